package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/printers"
	"github.com/petrel-dev/petrel/internal/cli/scale"
	"github.com/petrel-dev/petrel/internal/engine"
)

// The test binary doubles as the engine's shim: `serve.test -shim DIR`.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "-shim" {
		if err := engine.RunShim(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newEngine(t *testing.T) *engine.Engine {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	e, err := engine.New(engine.Config{Home: t.TempDir(), GPUs: engine.FakeGPUs(0), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Delete(context.Background(), backend.Ref{Kind: "service", Name: "web"})
		e.Close()
	})
	return e
}

// webSpec is a service of python http.server replicas serving a volume.
const webSpec = `apiVersion: petrel.dev/v1alpha1
kind: Volume
metadata:
  name: site
spec:
  source: site
---
apiVersion: petrel.dev/v1alpha1
kind: InferenceService
metadata:
  name: web
spec:
  command: [python3, -m, http.server, $(PORT), --bind, 127.0.0.1, --directory, $(SITE)]
  env:
    - {name: VERSION, value: "%s"}
  port: 8080
  replicas: 2
  volumes:
    - {name: site, mountPath: /site, pathEnv: SITE}
  readinessProbe:
    httpGet: {path: /index.html}
    periodSeconds: 1
  strategy: {maxSurge: "1", maxUnavailable: "0"}
  terminationGracePeriodSeconds: 2
`

func writeSpec(t *testing.T, dir, version string) string {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "site"), 0o755)
	os.WriteFile(filepath.Join(dir, "site", "index.html"), []byte("hello\n"), 0o644)
	p := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(webSpec, version)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runServe(t *testing.T, e *engine.Engine, file string, timeout time.Duration) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts := &Options{IO: &factory.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Backend: func(context.Context) (backend.Backend, error) { return e, nil },
		Files:   []string{file}, Timeout: timeout, PollInterval: 100 * time.Millisecond}
	err := Run(context.Background(), opts)
	return out.String(), errOut.String(), err
}

func TestServeCreatesWaitsPrintsTheURLAndRollsAnUpdate(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	out, progress, err := runServe(t, e, writeSpec(t, dir, "1"), time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress)
	}
	url := strings.TrimSpace(out)
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.Contains(progress, "inferenceservice/web created") ||
		!strings.Contains(progress, "2/2 ready") {
		t.Fatalf("stdout %q, stderr:\n%s", out, progress)
	}
	resp, err := http.Get(url + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello\n" {
		t.Fatalf("GET %s/index.html: %q", url, body)
	}

	// A changed spec is rolled out; the URL stays.
	out, progress, err = runServe(t, e, writeSpec(t, dir, "2"), time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress)
	}
	if strings.TrimSpace(out) != url || !strings.Contains(progress, "inferenceservice/web configured") {
		t.Fatalf("update: stdout %q, stderr:\n%s", out, progress)
	}
	s, err := e.GetService(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if s.Generation != 2 || !RolledOut(s) {
		t.Fatalf("after the update: generation %d, rolled out %v", s.Generation, RolledOut(s))
	}

	// petrel scale service web --replicas 1
	var sout bytes.Buffer
	cmd := scale.NewCmd(&factory.Factory{IO: &factory.IOStreams{Out: &sout, ErrOut: io.Discard}, BackendOverride: e}, nil)
	cmd.SetArgs([]string{"service", "web", "--replicas", "1"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if sout.String() != "service/web scaled to 1\n" {
		t.Errorf("scale printed %q", sout.String())
	}
	st, err := Wait(context.Background(), e, "web", 30*time.Second, 100*time.Millisecond, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	serving := 0
	for _, r := range st.Replicas {
		if r.Phase != "Terminating" {
			serving++
		}
	}
	if st.DesiredReplicas != 1 || serving != 1 {
		t.Fatalf("after scale: desired %d, %d replicas not terminating", st.DesiredReplicas, serving)
	}
}

func TestServeTimesOutWithTheStateOfReplicasThatNeverBecomeReady(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	p := writeSpec(t, dir, "1")
	b, _ := os.ReadFile(p)
	// Replicas that run but never pass readiness (404): serve waits until
	// the timeout, then says which replicas are not ready.
	os.WriteFile(p, bytes.Replace(b, []byte("path: /index.html"), []byte("path: /missing.html"), 1), 0o644)
	_, _, err := runServe(t, e, p, 3*time.Second)
	var ee *printers.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("got %v, want an exit error", err)
	}
	if !strings.Contains(err.Error(), "not ready after 3s") || !strings.Contains(err.Error(), "replica 0 is ") {
		t.Errorf("the error does not say why: %v", err)
	}
}

func TestServeRejectsAFileWithoutAService(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "v.yaml")
	os.WriteFile(p, []byte("apiVersion: petrel.dev/v1alpha1\nkind: Volume\nmetadata: {name: v}\nspec: {}\n"), 0o644)
	e := newEngine(t)
	_, _, err := runServe(t, e, p, time.Second)
	if err == nil || !strings.Contains(err.Error(), "no InferenceService") {
		t.Fatalf("got %v", err)
	}
}

func TestScaleFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
		name    string
		n       int32
	}{
		{[]string{"service", "digits", "--replicas", "3"}, "", "digits", 3},
		{[]string{"service/digits", "--replicas", "0"}, "", "digits", 0},
		{[]string{"service", "digits"}, "--replicas is required", "", 0},
		{[]string{"job", "digits", "--replicas", "2"}, "scale works on services", "", 0},
	} {
		var got *scale.Options
		cmd := scale.NewCmd(&factory.Factory{IO: &factory.IOStreams{Out: io.Discard, ErrOut: io.Discard}}, func(_ context.Context, o *scale.Options) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: got %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.Name != tc.name || got.Replicas != tc.n {
			t.Errorf("%v: got %+v %v", tc.args, got, err)
		}
	}
}

func TestServeStopsEarlyWithLogsWhenEveryReplicaCrashLoops(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	p := writeSpec(t, dir, "1")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte("--bind"), []byte("--no-such-flag"), 1), 0o644)
	// The timeout is far longer than the test may take: serve must stop on
	// its own once both replicas have crashed and restarted twice.
	_, progress, err := runServe(t, e, p, 10*time.Minute)
	var loop *CrashLoopError
	if !errors.As(err, &loop) {
		t.Fatalf("got %v, want a crash-loop error\n%s", err, progress)
	}
	if !strings.Contains(err.Error(), "every replica is crash-looping") || !strings.Contains(err.Error(), "(last: Error)") {
		t.Errorf("error: %v", err)
	}
	if !strings.Contains(progress, "last lines of replica") || !strings.Contains(progress, "unrecognized arguments: --no-such-flag") {
		t.Errorf("stderr lacks the replicas' last log lines:\n%s", progress)
	}
	if strings.Count(progress, "unrecognized arguments") != 1 {
		t.Errorf("the same log lines are repeated per replica:\n%s", progress)
	}
}

func TestServeInterruptedSaysTheServiceKeepsRunning(t *testing.T) {
	e := newEngine(t)
	p := writeSpec(t, t.TempDir(), "1")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte("--bind"), []byte("--no-such-flag"), 1), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	var errOut bytes.Buffer
	opts := &Options{IO: &factory.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: &errOut},
		Backend: func(context.Context) (backend.Backend, error) { return e, nil },
		Files:   []string{p}, Timeout: 5 * time.Minute, PollInterval: 50 * time.Millisecond}
	go func() {
		// Cancel (as Ctrl-C does) once serve has created the service.
		for !strings.Contains(errOut.String(), "created") {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	err := Run(ctx, opts)
	var ee *printers.ExitError
	if !errors.As(err, &ee) || ee.Code != 130 {
		t.Fatalf("got %v, want exit code 130", err)
	}
	if strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "keeps running") {
		t.Errorf("error: %v", err)
	}
}
