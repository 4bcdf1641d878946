package devstack

import (
	"context"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/replicatorhq/replicator/internal/launch"
)

// Launcher plays EC2's part: for every worker instance started in moto it runs
// the real worker binary as a process, and kills the process when the instance
// is terminated.
type Launcher struct {
	EC2   *ec2.Client
	Bin   string
	Env   []string
	Table string
	Out   io.Writer

	mu    sync.Mutex
	procs map[string]*exec.Cmd // by instance id
	jobs  map[string]string    // instance id -> job id
	seen  map[string]bool
}

// Sync starts workers for new instances and stops those of terminated ones.
func (l *Launcher) Sync(ctx context.Context) {
	workers, err := launch.Workers(ctx, l.EC2)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.procs == nil {
		l.procs, l.jobs, l.seen = map[string]*exec.Cmd{}, map[string]string{}, map[string]bool{}
	}
	live := map[string]bool{}
	for _, w := range workers {
		live[w.ID] = true
		if l.seen[w.ID] {
			continue
		}
		l.seen[w.ID] = true
		cmd := exec.Command(l.Bin, "-job-id", w.JobID, "-table", l.Table, "-instance-id", w.ID)
		cmd.Env = append(os.Environ(), l.Env...)
		cmd.Stdout, cmd.Stderr = l.Out, l.Out
		if l.Out == nil {
			cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			continue
		}
		l.procs[w.ID], l.jobs[w.ID] = cmd, w.JobID
		go cmd.Wait()
	}
	for id, cmd := range l.procs {
		if !live[id] {
			kill(cmd)
			delete(l.procs, id)
		}
	}
}

// Crash kills the worker of job id as a dead instance would stop (its instance
// stays "running" in EC2, silent): the reaper must notice.
func (l *Launcher) Crash(jobID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, cmd := range l.procs {
		if l.jobs[id] == jobID {
			kill(cmd)
			delete(l.procs, id)
			return true
		}
	}
	return false
}

// Running lists the job ids with a live worker process.
func (l *Launcher) Running() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, cmd := range l.procs {
		if cmd.ProcessState == nil {
			out = append(out, l.jobs[id])
		}
	}
	return out
}

// StopAll kills every worker.
func (l *Launcher) StopAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, cmd := range l.procs {
		kill(cmd)
		delete(l.procs, id)
	}
}

func kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
