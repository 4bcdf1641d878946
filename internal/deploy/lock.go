package deploy

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// Lock is a holder of the stack's lock in a self-managed (S3 or file)
// backend, as the pulumi CLI describes it when it refuses to go on.
type Lock struct {
	User, Host string
	PID        int
	Since      time.Time
}

func (l Lock) String() string {
	return fmt.Sprintf("%s@%s (pid %d), since %s (%s ago)", l.User, l.Host, l.PID, l.Since.Local().Format("2006-01-02 15:04"),
		time.Since(l.Since).Round(time.Minute))
}

// MaxLockAge bounds how long a setup or teardown can hold the lock: the AMI
// build (90 minutes at most) is the longest step. An older lock is stale.
const MaxLockAge = 4 * time.Hour

// ErrLocked is the stack being locked by another run that may be alive.
type ErrLocked struct {
	Stack string
	Locks []Lock
}

func (e *ErrLocked) Error() string {
	var who []string
	for _, l := range e.Locks {
		who = append(who, l.String())
	}
	return fmt.Sprintf("stack %s is locked by %s: another setup or teardown may be running; wait for it to end, or pass --unlock if it is dead",
		e.Stack, strings.Join(who, "; "))
}

// lockRE reads the pulumi CLI's description of a lock ("...: created by
// USER@HOST (pid N) at RFC3339"), the only place the Automation API gives it.
var lockRE = regexp.MustCompile(`created by (.*)@(\S+) \(pid (\d+)\) at (\S+)`)

// locksOf returns the locks an error of the Automation API reports, or nil
// when it is not about locks (the SDK decides that).
func locksOf(err error) []Lock {
	if err == nil || !auto.IsConcurrentUpdateError(err) {
		return nil
	}
	return parseLocks(err.Error())
}

// parseLocks reads the holders of the locks from the CLI's message.
func parseLocks(text string) []Lock {
	var out []Lock
	for _, m := range lockRE.FindAllStringSubmatch(text, -1) {
		pid, _ := strconv.Atoi(m[3])
		at, _ := time.Parse(time.RFC3339, m[4])
		out = append(out, Lock{User: m[1], Host: m[2], PID: pid, Since: at})
	}
	if len(out) == 0 {
		// Locked, but the holder could not be read: treat it as alive.
		out = append(out, Lock{User: "?", Host: "?", Since: time.Now()})
	}
	return out
}

// Stale says whether a lock's holder is provably gone: it ran on this host
// and its process no longer exists, or it is older than MaxLockAge.
func (l Lock) Stale(now time.Time, host string) (bool, string) {
	if l.Host == host && l.PID > 0 && !alive(l.PID) {
		return true, "its process on this host is gone"
	}
	if !l.Since.IsZero() && now.Sub(l.Since) > MaxLockAge {
		return true, fmt.Sprintf("it is older than %s, longer than any setup runs", MaxLockAge)
	}
	return false, ""
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
