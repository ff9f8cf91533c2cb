package ui_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/testbin"
)

// petrelBin is the petrel binary built once for the tests: they run the
// real CLI and a real `petrel server` with the dashboard in it.
var petrelBin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(&petrelBin, m.Run)) }

// env is one isolated petrel installation ($PETREL_HOME).
type env struct {
	t    *testing.T
	home string
	dir  string // spec files
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// Unix socket paths are limited to 108 bytes: keep home short.
	home, err := os.MkdirTemp("", "pu-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, home: home, dir: t.TempDir()}
	t.Cleanup(func() {
		// Workloads outlive the server: delete them first.
		e.run("delete", "jobs", "--all")
		e.run("delete", "services", "--all")
		e.run("server", "stop")
		os.RemoveAll(home)
	})
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) run(args ...string) result {
	cmd := exec.Command(petrelBin, args...)
	cmd.Env = append(os.Environ(), "PETREL_HOME="+e.home, "PETREL_BACKOFF_BASE=200ms", "PETREL_FAKE_GPUS=0", "DISPLAY=", "WAYLAND_DISPLAY=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// petrel runs the CLI and fails the test when it fails.
func (e *env) petrel(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("petrel %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (e *env) write(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// dashboard returns the URL `petrel ui` prints (with the token).
func (e *env) dashboard() string {
	e.t.Helper()
	u := strings.TrimSpace(e.petrel("ui", "--open", "never"))
	if !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.Contains(u, "?token=") {
		e.t.Fatalf("petrel ui printed %q, want http://127.0.0.1:PORT/?token=…", u)
	}
	return u
}

func (e *env) job(name string) backend.Job {
	e.t.Helper()
	// get -o json prints the object Kubernetes-shaped: status holds the rest.
	var obj struct {
		Spec   json.RawMessage `json:"spec"`
		Status backend.Job     `json:"status"`
	}
	if err := json.Unmarshal([]byte(e.petrel("get", "jobs", name, "-o", "json")), &obj); err != nil {
		e.t.Fatal(err)
	}
	j := obj.Status
	j.Name = name
	if err := json.Unmarshal(obj.Spec, &j.Spec); err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *env) service(name string) backend.Service {
	e.t.Helper()
	var obj struct {
		Spec   json.RawMessage `json:"spec"`
		Status backend.Service `json:"status"`
	}
	if err := json.Unmarshal([]byte(e.petrel("get", "services", name, "-o", "json")), &obj); err != nil {
		e.t.Fatal(err)
	}
	s := obj.Status
	s.Name = name
	if err := json.Unmarshal(obj.Spec, &s.Spec); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
