package root

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/testbin"
)

// These tests run the real petrel binary against a real `petrel server`
// in a temporary PETREL_HOME, as a user's shell does.

var petrelBin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(&petrelBin, m.Run)) }

// env is one petrel installation ($PETREL_HOME) and a folder of specs.
type env struct {
	t    *testing.T
	home string
	dir  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	home, err := os.MkdirTemp("", "ph-") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, home: home, dir: t.TempDir()}
	t.Cleanup(func() {
		e.petrel("server", "stop")
		os.RemoveAll(home)
	})
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(petrelBin, args...)
	cmd.Env = append(os.Environ(), "PETREL_HOME="+e.home, "PETREL_BACKOFF_BASE=200ms", "PETREL_FAKE_GPUS=0", "NO_COLOR=1")
	cmd.Dir = e.dir
	return cmd
}

// petrel runs the CLI to its end and returns its output and exit status.
func (e *env) petrel(args ...string) result {
	e.t.Helper()
	return e.petrelIn("", args...)
}

func (e *env) petrelIn(stdin string, args ...string) result {
	e.t.Helper()
	cmd := e.command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func (e *env) write(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// must runs the CLI and fails the test unless it exits 0.
func (e *env) must(args ...string) result {
	e.t.Helper()
	r := e.petrel(args...)
	if r.code != 0 {
		e.t.Fatalf("petrel %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// background is a CLI process left running; its stderr is scanned line by
// line so a test can wait for a line before signalling it.
type background struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer
	lines  chan string
	done   chan struct{}
	code   int
}

func (e *env) start(args ...string) *background {
	e.t.Helper()
	b := &background{cmd: e.command(args...), lines: make(chan string, 1000), done: make(chan struct{})}
	pr, pw := io.Pipe()
	b.cmd.Stderr = pw
	b.cmd.Stdout = &lockedWriter{mu: &b.mu, w: &b.stdout}
	if err := b.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			b.mu.Lock()
			b.stderr.WriteString(sc.Text() + "\n")
			b.mu.Unlock()
			select {
			case b.lines <- sc.Text():
			default:
			}
		}
		close(b.lines)
	}()
	go func() {
		err := b.cmd.Wait()
		pw.Close()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.code = ee.ExitCode()
		}
		close(b.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// waitLine waits (up to two minutes) for a stderr line containing s.
func (b *background) waitLine(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-b.lines:
			if !ok {
				t.Fatalf("exited before printing %q:\n%s", s, b.errText())
			}
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no line %q within 2m:\n%s", s, b.errText())
		}
	}
}

// waitOut waits (up to two minutes) until stdout contains s.
func (b *background) waitOut(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		found := strings.Contains(b.stdout.String(), s)
		b.mu.Unlock()
		if found {
			return
		}
		select {
		case <-b.done:
			t.Fatalf("exited before printing %q:\n%s", s, b.errText())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no output %q within 2m:\n%s", s, b.errText())
}

// stop sends sig and waits (up to a minute) for the process to end.
func (b *background) stop(t *testing.T, sig syscall.Signal) result {
	t.Helper()
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(time.Minute):
		t.Fatalf("still running a minute after %v:\n%s", sig, b.errText())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return result{b.stdout.String(), b.stderr.String(), b.code}
}

func (b *background) errText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sharedVolume is two spec files that both declare the volume they share,
// as examples/digits/train.yaml and serve.yaml do.
func (e *env) sharedVolume() (train, serve string) {
	vol := "apiVersion: petrel.dev/v1alpha1\nkind: Volume\nmetadata: {name: shared}\nspec: {size: 64Mi, accessModes: [ReadWriteMany]}\n---\n"
	train = e.write("specs/train.yaml", vol+`apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: writer
  labels: {team: vision}
spec:
  command: [sh, -c, 'echo model > $OUT/model.txt']
  volumes: [{name: shared, mountPath: /out, pathEnv: OUT}]
`)
	serve = e.write("specs/serve.yaml", vol+`apiVersion: petrel.dev/v1alpha1
kind: InferenceService
metadata: {name: reader}
spec:
  command: [python3, -m, http.server, $(PORT), --bind, 127.0.0.1, --directory, $(OUT)]
  port: 8080
  volumes: [{name: shared, mountPath: /out, pathEnv: OUT, readOnly: true}]
  readinessProbe: {httpGet: {path: /}, periodSeconds: 1}
`)
	return train, serve
}

func TestApplyOfAFolderWhoseFilesShareAVolume(t *testing.T) {
	e := newEnv(t)
	train, serve := e.sharedVolume()
	for _, args := range [][]string{{"apply", "-f", filepath.Dir(train)}, {"apply", "-f", train, "-f", serve}} {
		r := e.must(args...)
		if strings.Count(r.stdout, "volume/shared ") != 1 || !strings.Contains(r.stdout, "trainingjob/writer") || !strings.Contains(r.stdout, "inferenceservice/reader") {
			t.Errorf("%v:\n%s", args, r.stdout)
		}
	}
	e.must("delete", "service", "reader")
}

func TestCtrlCOnTrainExits130AndSaysTheJobKeepsRunning(t *testing.T) {
	e := newEnv(t)
	p := e.write("sleep.yaml", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: sleeper}\nspec: {command: [sh, -c, 'echo started; sleep 300']}\n")
	b := e.start("train", "-f", p)
	b.waitLine(t, "Running")
	r := b.stop(t, syscall.SIGINT)
	if r.code != 130 || !strings.Contains(r.stderr, "job sleeper keeps running") || !strings.Contains(r.stderr, "petrel delete job sleeper") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if j := e.must("get", "jobs", "sleeper"); !strings.Contains(j.stdout, "Running") {
		t.Errorf("the job did not keep running:\n%s", j.stdout)
	}

	// Ctrl-C is how one stops following logs: exit 130, no error.
	lb := e.start("logs", "sleeper", "-f")
	lb.waitOut(t, "started")
	r = lb.stop(t, syscall.SIGINT)
	if r.code != 130 || strings.Contains(r.stderr, "error") {
		t.Fatalf("logs -f: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	e.must("delete", "job", "sleeper")
}

func TestLogsOfAReplicaThatDoesNotExistFails(t *testing.T) {
	e := newEnv(t)
	_, serve := e.sharedVolume()
	e.must("serve", "-f", serve)
	t.Cleanup(func() { e.petrel("delete", "service", "reader") })
	r := e.petrel("logs", "service/reader", "--replica", "9")
	if r.code == 0 || !strings.Contains(r.stderr, "replica 9") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	e.must("logs", "service/reader", "--replica", "0")
	d := e.must("describe", "service", "reader").stdout
	for _, want := range []string{"Autoscaling: off", "Resources:  <none>", "Readiness:  http-get / delay=0s timeout=1s period=1s #success=1 #failure=3", "Liveness:   <none>"} {
		if !strings.Contains(d, want) {
			t.Errorf("describe service lacks %q:\n%s", want, d)
		}
	}
}

func TestDiagnoseOfPodsAndSpecFiles(t *testing.T) {
	e := newEnv(t)
	p := e.write("fail.yaml", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: fails}\nspec: {command: [sh, -c, 'echo boom; exit 3'], backoffLimit: 0}\n")
	if r := e.petrel("train", "-f", p); r.code != 1 {
		t.Fatalf("train: exit %d\n%s", r.code, r.stderr)
	}
	r := e.petrel("diagnose", "pod/fails-0")
	if r.code != 0 || !strings.Contains(r.stderr, "belongs to job/fails") || !strings.Contains(r.stdout, "exit") {
		t.Errorf("diagnose pod/fails-0: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = e.petrel("diagnose", "pod/nothing-0")
	if r.code == 0 || strings.Count(r.stderr, "diagnose pod/nothing-0") != 1 {
		t.Errorf("diagnose pod/nothing-0: exit %d, stderr %q (the prefix once)", r.code, r.stderr)
	}
	r = e.petrel("diagnose", "-f", p)
	if r.code != 0 || strings.Contains(r.stdout, "No problems found") || !strings.Contains(r.stdout, "job/fails") && !strings.Contains(r.stdout, "TrainingJob/fails") {
		t.Errorf("diagnose -f: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = e.petrel("diagnose", "--from-file", p)
	if r.code == 0 || !strings.Contains(r.stderr, "is a petrel spec") {
		t.Errorf("diagnose --from-file SPEC: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestGetHabits(t *testing.T) {
	e := newEnv(t)
	one := e.write("one.yaml", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: one, labels: {team: vision}}\nspec: {command: [sh, -c, 'echo loss=1'], backoffLimit: 1}\n")
	two := e.write("two.yaml", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: two}\nspec: {command: ['true']}\n")

	w := e.start("get", "jobs", "-w")
	e.must("train", "-f", one)
	e.must("train", "-f", two)
	w.waitOut(t, "Complete")
	if r := w.stop(t, syscall.SIGINT); r.code != 130 || !strings.Contains(r.stdout, "two") {
		t.Errorf("get -w: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// Shell completion offers the jobs' names (cobra's __complete is what
	// the bash, zsh and fish scripts call).
	if r := e.must("__complete", "get", "jobs", ""); !strings.Contains(r.stdout, "one\ntwo\n") {
		t.Errorf("completion of get jobs: %q", r.stdout)
	}
	if r := e.must("__complete", "logs", "job/t"); !strings.Contains(r.stdout, "job/two\n") || strings.Contains(r.stdout, "job/one") {
		t.Errorf("completion of logs job/t: %q", r.stdout)
	}
	if r := e.must("get", "jobs", "one", "two", "-o", "name"); r.stdout != "job/one\njob/two\n" {
		t.Errorf("-o name of two names: %q", r.stdout)
	}
	if r := e.must("get", "job/one", "-o", "jsonpath={.status.phase}"); r.stdout != "Complete\n" {
		t.Errorf("jsonpath: %q", r.stdout)
	}
	y := e.must("get", "jobs", "one", "-o", "yaml").stdout
	if !strings.Contains(y, "kind: TrainingJob") || !strings.Contains(y, "apiVersion: petrel.dev/v1alpha1") {
		t.Fatalf("-o yaml:\n%s", y)
	}
	// What get -o yaml prints applies again, as kubectl's output does.
	if r := e.petrelIn(y, "apply", "-f", "-"); r.code != 0 || !strings.Contains(r.stdout, "trainingjob/one unchanged") {
		t.Errorf("apply of get -o yaml: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	list := e.must("get", "jobs", "-o", "yaml").stdout
	if r := e.petrelIn(list, "apply", "-f", "-"); r.code != 0 || !strings.Contains(r.stdout, "trainingjob/two unchanged") {
		t.Errorf("apply of a List: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

func TestWaitLogsDescribeAndDeleteHabits(t *testing.T) {
	e := newEnv(t)
	mark := filepath.Join(e.dir, "ran-once")
	p := e.write("retry.yaml", fmt.Sprintf(`apiVersion: petrel.dev/v1alpha1
kind: Volume
metadata: {name: scratch}
spec: {size: 1Mi}
---
apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: retry}
spec:
  command: [sh, -c, 'if [ -e %s ]; then echo second; exit 0; fi; touch %s; echo first; exit 1']
  backoffLimit: 1
  volumes: [{name: scratch, mountPath: /scratch}]
`, mark, mark))
	e.must("apply", "-f", p)
	if r := e.must("wait", "--for=condition=Complete", "job/retry", "--timeout=2m"); r.stdout != "job/retry condition met\n" {
		t.Errorf("wait: %q", r.stdout)
	}
	if r := e.petrel("wait", "--for=condition=Failed", "job/retry", "--timeout=10s"); r.code != 1 || !strings.Contains(r.stderr, "will never be") {
		t.Errorf("wait for Failed of a Complete job: exit %d, %q", r.code, r.stderr)
	}

	if r := e.must("logs", "retry", "--previous"); !strings.Contains(r.stdout, "first") || strings.Contains(r.stdout, "second") {
		t.Errorf("logs --previous: %q", r.stdout)
	}
	if r := e.must("logs", "retry", "--tail", "1"); strings.TrimSpace(r.stdout) != "[attempt 1] second" {
		t.Errorf("logs --tail 1: %q", r.stdout)
	}
	// [attempt 1] 2026-12-05T07:20:01.123456789Z second
	if r := e.must("logs", "retry", "--timestamps", "--attempt", "1"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z second\n$`).MatchString(r.stdout) {
		t.Errorf("logs --timestamps --attempt 1: %q", r.stdout)
	}

	if r := e.must("describe", "volume", "scratch"); !strings.Contains(r.stdout, "Mounted by:     job/retry at /scratch") || !strings.Contains(r.stdout, "Size:           1Mi") {
		t.Errorf("describe volume:\n%s", r.stdout)
	}

	if r := e.must("delete", "-f", p); r.stdout != "job/retry deleted\nvolume/scratch deleted\n" {
		t.Errorf("delete -f: %q", r.stdout)
	}
	two := e.write("two.yaml", "apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: a}\nspec: {command: ['true']}\n---\napiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: b}\nspec: {command: ['true']}\n")
	e.must("apply", "-f", two)
	if r := e.must("delete", "jobs", "--all"); r.stdout != "job/a deleted\njob/b deleted\n" {
		t.Errorf("delete --all: %q", r.stdout)
	}
	if r := e.petrel("get", "jobs"); !strings.Contains(r.stderr, "No jobs found") {
		t.Errorf("after delete --all: %q %q", r.stdout, r.stderr)
	}
}

func TestMetricsOneRowPerStepWithTheSpecsNames(t *testing.T) {
	e := newEnv(t)
	p := e.write("m.yaml", `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: m}
spec:
  command: [sh, -c, 'echo CUDA_VISIBLE_DEVICES=0; for i in 1 2 3; do echo "epoch=$i loss=0.$((9-i)) accuracy=0.$((5+i))"; done']
  metrics: [epoch, loss, accuracy]
`)
	e.must("train", "-f", p)
	if r := e.must("train", "-f", p); !strings.Contains(r.stderr, "job m ran before (Complete, 1 attempt(s)); this run replaces it, with its logs and metrics") {
		t.Errorf("a re-run does not say it replaces the last run:\n%s", r.stderr)
	}
	r := e.must("metrics", "m")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "epoch") || !strings.Contains(lines[0], "accuracy") || strings.Contains(r.stdout, "CUDA") {
		t.Fatalf("metrics:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[3]); strings.Join(f, " ") != "0 3 0.6 0.8" {
		t.Errorf("last row %q, want attempt 0, epoch 3, loss 0.6, accuracy 0.8", lines[3])
	}
}
