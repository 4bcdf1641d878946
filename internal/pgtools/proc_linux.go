package pgtools

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the tool if replicator dies (kill -9
// included), so no orphaned pg_restore goes on changing the target.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
