// Package e2e runs the petrel binary as users do: real CLI processes, a
// real `petrel server` on a unix socket, real workloads.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine"
	"github.com/petrel-dev/petrel/internal/testbin"
	"github.com/petrel-dev/petrel/test/cluster"
)

var petrelBin string

func TestMain(m *testing.M) {
	// Clusters started by the tests are shared and deleted at the end.
	os.Exit(testbin.Main(&petrelBin, func() int { return cluster.Main(m) }))
}

// env is one isolated petrel installation ($PETREL_HOME) for a test.
type env struct {
	t    *testing.T
	home string
	dir  string // where spec files are written
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// Unix socket paths are limited to 108 bytes: keep home short.
	home, err := os.MkdirTemp("", "ph-")
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

// petrel runs the CLI and returns its output and exit code.
func (e *env) petrel(args ...string) result {
	e.t.Helper()
	cmd := exec.Command(petrelBin, args...)
	cmd.Env = append(os.Environ(), "PETREL_HOME="+e.home, "PETREL_BACKOFF_BASE=200ms", "PETREL_FAKE_GPUS=0")
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

func (e *env) write(name, content string) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) job(name string) backend.Job {
	e.t.Helper()
	r := e.petrel("get", "jobs", name, "-o", "json")
	if r.code != 0 {
		e.t.Fatalf("get job %s: %s", name, r.stderr)
	}
	// get KIND NAME -o json prints the one object, Kubernetes-shaped.
	var obj struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec   json.RawMessage `json:"spec"`
		Status backend.Job     `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil || obj.Metadata.Name != name {
		e.t.Fatalf("get job %s: %v %q", name, err, r.stdout)
	}
	j := obj.Status
	j.Name = name
	if err := json.Unmarshal(obj.Spec, &j.Spec); err != nil {
		e.t.Fatalf("get job %s: spec: %v", name, err)
	}
	return j
}

func (e *env) serverPID() int {
	e.t.Helper()
	r := e.petrel("server", "status")
	m := regexp.MustCompile(`pid:\s+(\d+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		e.t.Fatalf("server status: %q %q", r.stdout, r.stderr)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

func jobYAML(name, extra string, command ...string) string {
	q := make([]string, len(command))
	for i, c := range command {
		q[i] = strconv.Quote(c)
	}
	return fmt.Sprintf("apiVersion: petrel.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: %s}\nspec:\n  command: [%s]\n  terminationGracePeriodSeconds: 1\n%s", name, strings.Join(q, ", "), extra)
}

func TestTrainExitsZeroOnCompleteAndOneWithReasonOnFailure(t *testing.T) {
	e := newEnv(t)
	ok := e.petrel("train", "-f", e.write("ok.yaml", jobYAML("ok", "", "sh", "-c", "echo hello")))
	if ok.code != 0 || !strings.Contains(ok.stdout, "[attempt 0] hello") || !strings.Contains(ok.stderr, "job ok completed") {
		t.Fatalf("train ok: code %d\nstdout %q\nstderr %q", ok.code, ok.stdout, ok.stderr)
	}
	bad := e.petrel("train", "-f", e.write("bad.yaml", jobYAML("bad", "  backoffLimit: 1\n", "sh", "-c", "echo oops; exit 7")))
	if bad.code != 1 || !strings.Contains(bad.stderr, "BackoffLimitExceeded") || strings.Count(bad.stdout, "oops") != 2 {
		t.Fatalf("train bad: code %d\nstdout %q\nstderr %q", bad.code, bad.stdout, bad.stderr)
	}
	d := e.petrel("describe", "job", "bad")
	for _, want := range []string{"Status:         Failed", "BackoffLimitExceeded", "bad-0", "bad-1", "Error"} {
		if !strings.Contains(d.stdout, want) {
			t.Errorf("describe lacks %q:\n%s", want, d.stdout)
		}
	}
}

func TestInvalidSpecChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.petrel("train", "-f", e.write("ok.yaml", jobYAML("keep", "", "true")))
	// A valid job and an invalid one in the same file: neither is applied.
	spec := jobYAML("new", "", "true") + "---\n" + jobYAML("broken", "  backoffLimit: -1\n", "true")
	r := e.petrel("apply", "-f", e.write("mixed.yaml", spec))
	if r.code == 0 || !regexp.MustCompile(`mixed\.yaml:\d+:\d+: spec\.backoffLimit: negative backoffLimit -1`).MatchString(r.stderr) {
		t.Fatalf("apply: code %d stderr %q", r.code, r.stderr)
	}
	list := e.petrel("get", "jobs")
	if strings.Contains(list.stdout, "new") || strings.Contains(list.stdout, "broken") || !strings.Contains(list.stdout, "keep") {
		t.Fatalf("state changed by an invalid spec:\n%s", list.stdout)
	}
}

func TestSocketIsReachableOnlyByItsOwner(t *testing.T) {
	e := newEnv(t)
	e.petrel("get", "jobs") // starts the server
	st, err := os.Stat(filepath.Join(e.home, "petrel.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", st.Mode())
	}
	hs, _ := os.Stat(e.home)
	if hs.Mode().Perm() != 0o700 {
		t.Fatalf("home mode %v, want 0700", hs.Mode().Perm())
	}
}

// readPids waits for an attempt's pids.json (written by its shim).
func readPids(t *testing.T, home, job string, attempt int) engine.ShimPids {
	t.Helper()
	path := filepath.Join(home, "jobs", job, fmt.Sprintf("attempt-%d", attempt), "pids.json")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var p engine.ShimPids
		b, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(b, &p) == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKillDashNineServerMidJobLosesNothing(t *testing.T) {
	e := newEnv(t)
	spec := e.write("long.yaml", jobYAML("long", "", "sh", "-c", "echo start; sleep 3; echo end; echo accuracy=0.9"))
	if r := e.petrel("train", "-f", spec, "--detach"); r.code != 0 {
		t.Fatalf("train --detach: %q", r.stderr)
	}
	pids := readPids(t, e.home, "long", 0)
	if err := syscall.Kill(e.serverPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if syscall.Kill(pids.Pid, 0) != nil {
		t.Fatal("the workload died with the server")
	}
	// Any command starts a new server, which re-adopts the attempt.
	r := e.petrel("logs", "long", "-f")
	if r.code != 0 || r.stdout != "[attempt 0] start\n[attempt 0] end\n[attempt 0] accuracy=0.9\n" {
		t.Fatalf("logs after restart: code %d %q %q", r.code, r.stdout, r.stderr)
	}
	j := e.job("long")
	if j.Phase != backend.JobComplete || len(j.Attempts) != 1 || *j.Attempts[0].ExitCode != 0 || j.LastMetrics["accuracy"] != 0.9 {
		t.Fatalf("after restart: %s, attempts %+v, metrics %v", j.Phase, j.Attempts, j.LastMetrics)
	}
}

func TestAttemptLostWithServerAndShimIsFailedAndRetried(t *testing.T) {
	e := newEnv(t)
	marker := filepath.Join(e.dir, "second-run")
	// The first attempt sleeps (and is lost); the retry finds the marker and succeeds.
	spec := e.write("lost.yaml", jobYAML("lost", "  backoffLimit: 2\n", "sh", "-c",
		"if [ -e "+marker+" ]; then echo retried; exit 0; fi; touch "+marker+"; sleep 30"))
	if r := e.petrel("train", "-f", spec, "--detach"); r.code != 0 {
		t.Fatalf("train --detach: %q", r.stderr)
	}
	pids := readPids(t, e.home, "lost", 0)
	_ = syscall.Kill(e.serverPID(), syscall.SIGKILL)
	_ = syscall.Kill(pids.ShimPid, syscall.SIGKILL)
	_ = syscall.Kill(-pids.Pid, syscall.SIGKILL)
	r := e.petrel("logs", "lost", "-f")
	if !strings.Contains(r.stdout, "[attempt 1] retried") {
		t.Fatalf("logs: %q %q", r.stdout, r.stderr)
	}
	j := e.job("lost")
	if j.Phase != backend.JobComplete || len(j.Attempts) != 2 || j.Attempts[0].Phase != "Failed" || !strings.Contains(j.Attempts[0].Message, "without recording an exit status") {
		t.Fatalf("after restart: %s, attempts %+v", j.Phase, j.Attempts)
	}
}

func TestDigitsExampleTrainsToHeldOutAccuracy(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is required (hack/test.sh installs it)")
	}
	e := newEnv(t)
	r := e.petrel("train", "-f", "../../examples/digits/train.yaml")
	if r.code != 0 {
		t.Fatalf("train: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`held-out accuracy: ([0-9.]+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no held-out accuracy in output:\n%s", r.stdout)
	}
	acc, _ := strconv.ParseFloat(m[1], 64)
	if acc < 0.90 {
		t.Fatalf("held-out accuracy %.4f < 0.90", acc)
	}
	if _, err := os.Stat(filepath.Join(e.home, "volumes", "digits-models", "digits.json")); err != nil {
		t.Fatalf("model not in the models volume: %v", err)
	}
	// A row per step, a column per metric: the last epoch's row carries
	// the held-out accuracy too.
	met := e.petrel("metrics", "digits-train", "-o", "csv")
	lines := strings.Split(strings.TrimSpace(met.stdout), "\n")
	if len(lines) != 21 || lines[0] != "ATTEMPT,epoch,loss,accuracy,test_accuracy" || !strings.HasPrefix(lines[20], "0,20,") || strings.HasSuffix(lines[20], ",") {
		t.Fatalf("metrics csv:\n%s", met.stdout)
	}
}

// BenchmarkTrainTrue measures the engine's own overhead: `petrel train`
// of a job running `true` with the server already up, against exec'ing
// `true` directly; and the idle server's resident memory.
func BenchmarkTrainTrue(b *testing.B) {
	home, _ := os.MkdirTemp("", "ph-bench-")
	defer os.RemoveAll(home)
	dir := b.TempDir()
	spec := filepath.Join(dir, "true.yaml")
	os.WriteFile(spec, []byte(jobYAML("bench-true", "", "true")), 0o600)
	run := func(args ...string) {
		cmd := exec.Command(petrelBin, args...)
		cmd.Env = append(os.Environ(), "PETREL_HOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("get", "jobs") // start the server
	defer run("server", "stop")
	runtime.GC()
	b.Run("direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := exec.Command("true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("petrel-train", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			run("train", "-f", spec)
		}
	})
	b.Run("server-idle-rss", func(b *testing.B) {
		time.Sleep(2 * time.Second) // let it settle
		cmd := exec.Command(petrelBin, "server", "status")
		cmd.Env = append(os.Environ(), "PETREL_HOME="+home)
		out, _ := cmd.Output()
		m := regexp.MustCompile(`pid:\s+(\d+)`).FindSubmatch(out)
		if m == nil {
			b.Fatal("no server")
		}
		st, _ := os.ReadFile("/proc/" + string(m[1]) + "/status")
		rss := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(st)
		kb, _ := strconv.Atoi(string(rss[1]))
		for i := 0; i < b.N; i++ {
		}
		b.ReportMetric(float64(kb)/1024, "MiB-rss")
	})
}

func TestMetricsPrintedWhileTheServerIsDownAreKept(t *testing.T) {
	e := newEnv(t)
	spec := e.write("steps.yaml", jobYAML("steps", "", "sh", "-c", "for i in 1 2 3 4 5 6; do echo step=$i; sleep 0.5; done"))
	if r := e.petrel("train", "-f", spec, "--detach"); r.code != 0 {
		t.Fatalf("train --detach: %q", r.stderr)
	}
	readPids(t, e.home, "steps", 0)
	time.Sleep(1200 * time.Millisecond) // the server stores the first steps
	_ = syscall.Kill(e.serverPID(), syscall.SIGKILL)
	time.Sleep(1500 * time.Millisecond)            // steps printed while no server runs
	e.petrel("logs", "steps", "-f")                // restarts the server, waits for the end
	r := e.petrel("metrics", "steps", "-o", "csv") // a row per step: ATTEMPT,step
	for i := 1; i <= 6; i++ {
		if strings.Count(r.stdout, fmt.Sprintf("\n0,%d\n", i)) != 1 {
			t.Fatalf("step %d not stored exactly once:\n%s", i, r.stdout)
		}
	}
}

func TestTrainSurvivesServerCrashAndTTLZero(t *testing.T) {
	e := newEnv(t)
	// TTL 0: the job is deleted the moment it completes; train still reports it.
	r := e.petrel("train", "-f", e.write("ttl.yaml", jobYAML("ttl0", "  ttlSecondsAfterFinished: 0\n", "sh", "-c", "echo done")))
	if r.code != 0 || !strings.Contains(r.stderr, "job ttl0 completed") {
		t.Fatalf("train of a TTL-0 job: code %d %q", r.code, r.stderr)
	}
	// The server is killed while train follows: train reconnects (starting a
	// new server, which re-adopts the attempt) and prints each line once.
	spec := e.write("crash.yaml", jobYAML("crash", "", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.4; done"))
	cmd := exec.Command(petrelBin, "train", "-f", spec)
	cmd.Env = append(os.Environ(), "PETREL_HOME="+e.home, "PETREL_BACKOFF_BASE=200ms", "PETREL_FAKE_GPUS=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readPids(t, e.home, "crash", 0)
	time.Sleep(800 * time.Millisecond)
	_ = syscall.Kill(e.serverPID(), syscall.SIGKILL)
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("train exited with %v after the server crash:\n%s\n%s", err, out.String(), errb.String())
	}
	for i := 1; i <= 8; i++ {
		if n := strings.Count(out.String(), fmt.Sprintf("[attempt 0] line %d\n", i)); n != 1 {
			t.Fatalf("line %d printed %d times:\n%s\n%s", i, n, out.String(), errb.String())
		}
	}
	if !strings.Contains(errb.String(), "reconnected") {
		t.Fatalf("no reconnection reported:\n%s", errb.String())
	}
}
