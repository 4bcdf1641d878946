package devstack

import (
	"context"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/replicatorhq/replicator/internal/remote/launch"
)

// Launcher plays EC2's part for one stack: for every worker instance of the
// stack started in moto it runs the real worker binary as a process, and
// kills the process when the instance is terminated. When the worker exits by
// itself, the instance is terminated, as the image's unit powering it off and
// the launch template's shutdown behaviour do on AWS.
type Launcher struct {
	EC2   *ec2.Client
	Stack string
	Bin   string
	Env   []string
	Args  []string
	Table string
	Out   io.Writer

	mu      sync.Mutex
	procs   map[string]*exec.Cmd // by instance id
	jobs    map[string]string    // instance id -> job id
	seen    map[string]bool
	crashed map[string]bool // killed as a dead instance: it stays "running"
}

// Sync starts workers for new instances and stops those of terminated ones.
func (l *Launcher) Sync(ctx context.Context) {
	workers, err := launch.Workers(ctx, l.EC2, l.Stack)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	live := map[string]bool{}
	for _, w := range workers {
		live[w.ID] = true
		if l.seen[w.ID] {
			continue
		}
		l.seen[w.ID] = true
		cmd := exec.Command(l.Bin, append([]string{"-job-id", w.JobID, "-table", l.Table, "-instance-id", w.ID, "-image-id", w.Image}, l.Args...)...)
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
		go l.exited(w.ID, cmd)
	}
	for id, cmd := range l.procs {
		if !live[id] {
			kill(cmd)
			delete(l.procs, id)
		}
	}
}

func (l *Launcher) init() {
	if l.procs == nil {
		l.procs, l.jobs, l.seen, l.crashed = map[string]*exec.Cmd{}, map[string]string{}, map[string]bool{}, map[string]bool{}
	}
}

// exited powers the instance off (terminates it) once its worker is done,
// unless the test crashed it on purpose.
func (l *Launcher) exited(id string, cmd *exec.Cmd) {
	_ = cmd.Wait()
	l.mu.Lock()
	crashed := l.crashed[id]
	l.mu.Unlock()
	if crashed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = launch.Terminate(ctx, l.EC2, id)
}

// Crash kills the worker of job id as a dead instance would stop (its instance
// stays "running" in EC2, silent): the reaper must notice.
func (l *Launcher) Crash(jobID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	for id, cmd := range l.procs {
		if l.jobs[id] == jobID {
			l.crashed[id] = true
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

// StopAll kills every worker (the platform is going away: nothing is
// terminated in moto).
func (l *Launcher) StopAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	for id, cmd := range l.procs {
		l.crashed[id] = true
		kill(cmd)
		delete(l.procs, id)
	}
}

func kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
