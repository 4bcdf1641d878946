// Package devstack runs the remote job platform on loopback without an AWS
// account, for tests and the demo: moto_server emulates DynamoDB, Secrets
// Manager, EC2, CloudWatch Logs and STS; the real Lambda handler is served over
// HTTP in place of API Gateway (checking SigV4 signatures); a launcher runs the
// real worker binary as a process for each instance started in moto's EC2; the
// reaper runs on a ticker in place of EventBridge.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/replicatorhq/replicator/internal/testenv/loopback"
)

// Moto is a running moto_server.
type Moto struct {
	URL string
	cmd *exec.Cmd
}

// FindMoto locates moto_server: PATH, then pyenv's shims and versions (moto is
// installed in the pyenv Python, not Debian's).
func FindMoto() (string, error) {
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	home, _ := os.UserHomeDir()
	candidates := []string{filepath.Join(home, ".pyenv/shims/moto_server"), "/root/.pyenv/shims/moto_server"}
	if root := os.Getenv("PYENV_ROOT"); root != "" {
		candidates = append([]string{filepath.Join(root, "shims/moto_server")}, candidates...)
	}
	versions, _ := filepath.Glob(filepath.Join(home, ".pyenv/versions/*/bin/moto_server"))
	candidates = append(candidates, versions...)
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", errors.New("moto_server not found: install the Python moto package with its server extra (pip install 'moto[server]'), or put moto_server on PATH")
}

// StartMoto starts moto_server on a free loopback port.
func StartMoto(ctx context.Context) (*Moto, error) {
	bin, err := FindMoto()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := loopback.FreePort()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// Rules with API destination targets (the stack's webhooks) call
		// them for real: moto sends the request, without a body.
		cmd.Env = append(os.Environ(), "MOTO_EVENTS_INVOKE_HTTP=true")
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start moto_server: %w", err)
		}
		m := &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
		if lastErr = m.wait(ctx, 30*time.Second); lastErr == nil {
			return m, nil
		}
		m.Stop()
	}
	return nil, lastErr
}

func (m *Moto) wait(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("moto_server exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if resp, err := http.Get(m.URL + "/moto-api/"); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("moto_server did not answer on %s", m.URL)
}

// Stop kills moto_server (and its process group: the pyenv shim forks).
func (m *Moto) Stop() {
	if m != nil && m.cmd != nil && m.cmd.Process != nil {
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Config is an AWS configuration for moto in region, with made-up static
// credentials and no shared profile.
func (m *Moto) Config(ctx context.Context, region string) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx, config.WithRegion(region), config.WithBaseEndpoint(m.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIA", "secret", "")),
		config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil), config.WithEC2IMDSClientEnableState(0))
}

// Main runs a package's tests with one moto_server, stopped afterwards: for a
// TestMain. m is a *testing.M.
func Main(m interface{ Run() int }, moto **Moto) {
	var err error
	if *moto, err = StartMoto(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	(*moto).Stop()
	os.Exit(code)
}
