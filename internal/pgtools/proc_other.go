//go:build !linux

package pgtools

import "os/exec"

// dieWithParent is a Linux feature; elsewhere a killed run may leave a tool
// running until it finishes.
func dieWithParent(cmd *exec.Cmd) {}
