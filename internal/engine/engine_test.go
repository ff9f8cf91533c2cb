package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine/node"
	"github.com/petrel-dev/petrel/internal/spec"
)

// The test binary doubles as the shim: `engine.test -shim DIR`.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "-shim" {
		if err := RunShim(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testBinary() string { return os.Args[0] }

func newEngine(t *testing.T, gpus int) *Engine {
	t.Helper()
	home := t.TempDir()
	e, err := New(Config{Home: home, BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second,
		GPUs: FakeGPUs(gpus), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		jobs, _ := e.ListJobs(context.Background())
		for _, j := range jobs {
			_ = e.Delete(context.Background(), backend.Ref{Kind: "job", Name: j.Name})
		}
		e.Close()
	})
	return e
}

func ptr[T any](v T) *T { return &v }

func job(name string, cmd ...string) *v1alpha1.TrainingJob {
	return &v1alpha1.TrainingJob{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindTrainingJob},
		Metadata: v1alpha1.ObjectMeta{Name: name},
		Spec:     v1alpha1.TrainingJobSpec{PodTemplate: v1alpha1.PodTemplate{Command: cmd, TerminationGracePeriodSeconds: ptr(int64(1))}},
	}
}

func apply(t *testing.T, e *Engine, objs ...v1alpha1.Object) {
	t.Helper()
	dir := t.TempDir()
	var docs []*spec.Document
	for _, o := range objs {
		docs = append(docs, &spec.Document{File: "test.yaml", Object: o, Dir: dir})
	}
	if _, err := e.Apply(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

// waitJob waits (on the engine's watch, not a sleep loop) until cond holds.
func waitJob(t *testing.T, e *Engine, name string, timeout time.Duration, cond func(backend.Job) bool) backend.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ch, err := e.WatchJob(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var last backend.Job
		for j := range ch {
			last = j
			if cond(j) {
				return j
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("job %s: condition not reached in %s; last state %s waiting=%q attempts=%+v", name, timeout, last.Phase, last.Waiting, last.Attempts)
		}
		if last.Finished() {
			t.Fatalf("job %s finished as %s without reaching the condition; attempts=%+v", name, last.Phase, last.Attempts)
		}
	}
}

func finished(j backend.Job) bool { return j.Finished() }

func reason(j backend.Job) string {
	if c := j.FinalCondition(); c != nil {
		return c.Reason
	}
	return ""
}

func TestJobCompletesWithExitCodeZero(t *testing.T) {
	e := newEngine(t, 0)
	apply(t, e, job("ok", "true"))
	j := waitJob(t, e, "ok", 20*time.Second, finished)
	if j.Phase != backend.JobComplete || len(j.Attempts) != 1 {
		t.Fatalf("phase %s attempts %d, want Complete after 1", j.Phase, len(j.Attempts))
	}
	a := j.Attempts[0]
	if a.Reason != backend.ReasonCompleted || a.ExitCode == nil || *a.ExitCode != 0 || a.StartTime == nil || a.EndTime == nil {
		t.Fatalf("attempt %+v", a)
	}
}

func TestFailingJobRetriesWithBackoffUntilBackoffLimit(t *testing.T) {
	e := newEngine(t, 0)
	j := job("fails", "sh", "-c", "echo try; exit 3")
	j.Spec.BackoffLimit = ptr(int32(2))
	apply(t, e, j)
	got := waitJob(t, e, "fails", 30*time.Second, finished)
	if got.Phase != backend.JobFailed || reason(got) != backend.ReasonBackoffLimitExceeded {
		t.Fatalf("phase %s reason %s, want Failed/BackoffLimitExceeded", got.Phase, reason(got))
	}
	if len(got.Attempts) != 3 {
		t.Fatalf("%d attempts, want backoffLimit+1 = 3", len(got.Attempts))
	}
	for i, a := range got.Attempts {
		if a.Reason != backend.ReasonError || a.ExitCode == nil || *a.ExitCode != 3 {
			t.Errorf("attempt %d: reason %s exit %v, want Error/3", i, a.Reason, a.ExitCode)
		}
		if i > 0 {
			// Back-off before attempt i: base × 2^(i-1) after the previous end.
			gap := a.StartTime.Sub(*got.Attempts[i-1].EndTime)
			want := 100 * time.Millisecond << (i - 1)
			if gap < want-10*time.Millisecond {
				t.Errorf("attempt %d started %s after the previous failure, want at least %s", i, gap, want)
			}
		}
	}
	var out strings.Builder
	if err := e.Logs(context.Background(), backend.Ref{Kind: "job", Name: "fails"}, backend.LogOptions{Attempt: -1}, &out); err != nil {
		t.Fatal(err)
	}
	want := "[attempt 0] try\n[attempt 1] try\n[attempt 2] try\n"
	if out.String() != want {
		t.Fatalf("logs %q, want %q", out.String(), want)
	}
}

// groupAlive lists the live (non-zombie) processes left in process group pgid.
func groupAlive(pgid int) []string {
	var left []string
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			left = append(left, fmt.Sprintf("%d(%s)", pid, f[0]))
		}
	}
	return left
}

func TestDeadlineKillsWholeProcessGroup(t *testing.T) {
	e := newEngine(t, 0)
	j := job("slow", "sh", "-c", "sleep 60 & sleep 60 & wait")
	j.Spec.ActiveDeadlineSeconds = ptr(int64(1))
	apply(t, e, j)
	got := waitJob(t, e, "slow", 20*time.Second, finished)
	if got.Phase != backend.JobFailed || reason(got) != backend.ReasonDeadlineExceeded {
		t.Fatalf("phase %s reason %s, want Failed/DeadlineExceeded", got.Phase, reason(got))
	}
	got = waitJob(t, e, "slow", 20*time.Second, func(j backend.Job) bool { return j.Attempts[0].Phase != "Running" })
	if a := got.Attempts[0]; a.Reason != backend.ReasonDeadlineExceeded {
		t.Fatalf("attempt reason %s, want DeadlineExceeded", a.Reason)
	}
	var p ShimPids
	if err := node.ReadJSON(filepath.Join(attemptDir(e.jobDir("slow"), 0), node.PidsFile), &p); err != nil {
		t.Fatal(err)
	}
	if left := groupAlive(p.Pid); len(left) > 0 {
		t.Fatalf("process group %d still has processes after the deadline: %v", p.Pid, left)
	}
	if len(got.Attempts) != 1 {
		t.Fatalf("%d attempts after the deadline, want 1 (no retry)", len(got.Attempts))
	}
}

func TestPodFailurePolicyFailJobEndsAtOnce(t *testing.T) {
	e := newEngine(t, 0)
	j := job("policy", "sh", "-c", "exit 42")
	j.Spec.BackoffLimit = ptr(int32(5))
	j.Spec.PodFailurePolicy = &v1alpha1.PodFailurePolicy{Rules: []v1alpha1.PodFailurePolicyRule{
		{Action: v1alpha1.PodFailurePolicyActionFailJob, OnExitCodes: &v1alpha1.PodFailurePolicyOnExitCodesRequirement{Operator: "In", Values: []int32{42}}},
	}}
	apply(t, e, j)
	got := waitJob(t, e, "policy", 20*time.Second, finished)
	if got.Phase != backend.JobFailed || reason(got) != backend.ReasonPodFailurePolicy || len(got.Attempts) != 1 {
		t.Fatalf("phase %s reason %s attempts %d, want Failed/PodFailurePolicy after 1", got.Phase, reason(got), len(got.Attempts))
	}
	if msg := got.FinalCondition().Message; !strings.Contains(msg, "exit code 42") || !strings.Contains(msg, "rule at index 0") {
		t.Fatalf("message %q", msg)
	}
}

func TestPodFailurePolicyIgnoreDoesNotCountAgainstBackoffLimit(t *testing.T) {
	e := newEngine(t, 0)
	marker := filepath.Join(t.TempDir(), "ran-once")
	// Exits 43 (a "preempted" code) the first time, then succeeds.
	j := job("ignore", "sh", "-c", "if [ -e \"$(MARKER)\" ]; then exit 0; fi; touch \"$(MARKER)\"; exit 43")
	j.Spec.Env = []v1alpha1.EnvVar{{Name: "MARKER", Value: marker}}
	j.Spec.BackoffLimit = ptr(int32(0))
	j.Spec.PodFailurePolicy = &v1alpha1.PodFailurePolicy{Rules: []v1alpha1.PodFailurePolicyRule{
		{Action: v1alpha1.PodFailurePolicyActionIgnore, OnExitCodes: &v1alpha1.PodFailurePolicyOnExitCodesRequirement{Operator: "In", Values: []int32{43}}},
	}}
	apply(t, e, j)
	got := waitJob(t, e, "ignore", 20*time.Second, finished)
	if got.Phase != backend.JobComplete || len(got.Attempts) != 2 || !got.Attempts[0].Ignored || got.Failed != 0 {
		t.Fatalf("phase %s attempts %+v failed %d, want Complete after an ignored failure", got.Phase, got.Attempts, got.Failed)
	}
}

func TestCommandThatCannotStartIsStartError(t *testing.T) {
	e := newEngine(t, 0)
	j := job("nostart", "no-such-program-petrel")
	j.Spec.BackoffLimit = ptr(int32(1))
	apply(t, e, j)
	got := waitJob(t, e, "nostart", 20*time.Second, finished)
	if got.Phase != backend.JobFailed || reason(got) != backend.ReasonBackoffLimitExceeded || len(got.Attempts) != 2 {
		t.Fatalf("phase %s reason %s attempts %d", got.Phase, reason(got), len(got.Attempts))
	}
	a := got.Attempts[0]
	if a.Reason != backend.ReasonStartError || *a.ExitCode != 128 || !strings.Contains(a.Message, "not found") {
		t.Fatalf("attempt %+v, want StartError/128 'not found'", a)
	}
}

func TestGPUJobsWaitForFreeGPUsAndImpossibleRequestsAreRejected(t *testing.T) {
	e := newEngine(t, 2)
	big := job("big", "sh", "-c", "echo devices=$CUDA_VISIBLE_DEVICES; sleep 1")
	big.Spec.Resources.GPU = 2
	apply(t, e, big)
	waitJob(t, e, "big", 10*time.Second, func(j backend.Job) bool { return j.Phase == backend.JobRunning })
	small := job("small", "sh", "-c", "echo devices=$CUDA_VISIBLE_DEVICES")
	small.Spec.Resources.GPU = 1
	apply(t, e, small)
	w := waitJob(t, e, "small", 10*time.Second, func(j backend.Job) bool { return j.Waiting != nil || len(j.Attempts) > 0 })
	if w.Waiting == nil || w.Waiting.Reason != backend.WaitingForGPUs || w.Waiting.GPUsRequested != 1 || w.Waiting.GPUsFree != 0 {
		t.Fatalf("waiting = %q, want the GPU wait to be visible", w.Waiting)
	}
	got := waitJob(t, e, "small", 20*time.Second, finished)
	if got.Phase != backend.JobComplete || len(got.Attempts[0].GPUs) != 1 {
		t.Fatalf("small: %s %+v", got.Phase, got.Attempts)
	}
	var out strings.Builder
	_ = e.Logs(context.Background(), backend.Ref{Kind: "job", Name: "big"}, backend.LogOptions{Attempt: 0}, &out)
	if !strings.Contains(out.String(), "devices=0,1") {
		t.Fatalf("big saw %q, want CUDA_VISIBLE_DEVICES=0,1", out.String())
	}
	huge := job("huge", "true")
	huge.Spec.Resources.GPU = 3
	_, err := e.Apply(context.Background(), []*spec.Document{{File: "x.yaml", Object: huge, Dir: t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "asks for 3 GPUs") || !strings.Contains(err.Error(), "has 2") {
		t.Fatalf("err = %v, want an immediate rejection", err)
	}
	if _, err := e.GetJob(context.Background(), "huge"); err == nil {
		t.Fatal("a rejected job was recorded")
	}
}

func TestMemoryLimitKillIsOOMKilled(t *testing.T) {
	if err := CgroupSupport(); err != nil {
		t.Skipf("cgroups are not writable on this host: %v", err)
	}
	e := newEngine(t, 0)
	j := job("oom", "python3", "-c", "x = bytearray(400 * 1024 * 1024); print('allocated')")
	q := resource.MustParse("64Mi")
	j.Spec.Resources.Memory = &q
	j.Spec.BackoffLimit = ptr(int32(0))
	apply(t, e, j)
	got := waitJob(t, e, "oom", 30*time.Second, finished)
	if a := got.Attempts[0]; a.Reason != backend.ReasonOOMKilled || *a.ExitCode != 137 {
		t.Fatalf("attempt %+v, want OOMKilled with exit code 137", a)
	}
}

func TestMetricsInKatibFormatAreStored(t *testing.T) {
	e := newEngine(t, 0)
	apply(t, e, job("metrics", "sh", "-c", "echo epoch=1 loss=0.9 accuracy=0.5; echo noise; echo epoch=2 loss=0.41 accuracy=0.93"))
	waitJob(t, e, "metrics", 20*time.Second, finished)
	pts, err := e.Metrics(context.Background(), "metrics")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pts {
		got = append(got, p.Name+"="+strconv.FormatFloat(p.Value, 'g', -1, 64))
	}
	want := "epoch=1 loss=0.9 accuracy=0.5 epoch=2 loss=0.41 accuracy=0.93"
	if strings.Join(got, " ") != want {
		t.Fatalf("metrics %q, want %q", strings.Join(got, " "), want)
	}
	j, _ := e.GetJob(context.Background(), "metrics")
	if j.LastMetrics["accuracy"] != 0.93 {
		t.Fatalf("last metrics %v", j.LastMetrics)
	}
}

func TestEngineRestartReadoptsRunningAttempt(t *testing.T) {
	home := t.TempDir()
	cfg := Config{Home: home, BackoffBase: 100 * time.Millisecond, GPUs: FakeGPUs(1), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf}
	e1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j := job("survivor", "sh", "-c", "echo before; sleep 2; echo after")
	j.Spec.Resources.GPU = 1
	apply(t, e1, j)
	waitJob(t, e1, "survivor", 10*time.Second, func(j backend.Job) bool { return j.Phase == backend.JobRunning })
	closed := time.Now()
	e1.Close() // the server goes away; the shim and workload do not
	if time.Since(closed) > time.Second {
		t.Fatalf("Close waited %s for the workload", time.Since(closed))
	}
	var p ShimPids
	for i := 0; i < 200; i++ { // the shim records pids right after starting the workload
		if err = node.ReadJSON(filepath.Join(attemptDir(e1.jobDir("survivor"), 0), node.PidsFile), &p); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || !node.Alive(p.Pid, p.StartTicks) {
		t.Fatalf("workload not running after Close: %v", err)
	}
	e2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if e2.running["survivor"] == nil {
		t.Fatal("the new engine did not adopt the running attempt")
	}
	if e2.node.GPUs.Free() != 0 {
		t.Fatalf("re-adopted attempt's GPU is not reserved: %d free", e2.node.GPUs.Free())
	}
	got := waitJob(t, e2, "survivor", 20*time.Second, finished)
	if got.Phase != backend.JobComplete || len(got.Attempts) != 1 {
		t.Fatalf("phase %s attempts %d, want Complete after the one re-adopted attempt", got.Phase, len(got.Attempts))
	}
	var out strings.Builder
	_ = e2.Logs(context.Background(), backend.Ref{Kind: "job", Name: "survivor"}, backend.LogOptions{Attempt: 0}, &out)
	if out.String() != "before\nafter\n" {
		t.Fatalf("log %q: output was lost", out.String())
	}
}

func TestVolumeIsSeededOnceAndPathPublished(t *testing.T) {
	e := newEngine(t, 0)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data.csv"), []byte("1,2,3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vol := &v1alpha1.Volume{Metadata: v1alpha1.ObjectMeta{Name: "data"}, Spec: v1alpha1.VolumeSpec{Source: src}}
	j := job("reader", "sh", "-c", "cat $(DATA_DIR)/data.csv")
	j.Spec.Volumes = []v1alpha1.VolumeMount{{Name: "data", MountPath: "/data", PathEnv: "DATA_DIR"}}
	apply(t, e, vol, j)
	waitJob(t, e, "reader", 20*time.Second, finished)
	var out strings.Builder
	_ = e.Logs(context.Background(), backend.Ref{Kind: "job", Name: "reader"}, backend.LogOptions{Attempt: 0}, &out)
	if out.String() != "1,2,3\n" {
		t.Fatalf("job read %q from its volume", out.String())
	}
	// Re-applying does not re-seed: data written since stays.
	os.WriteFile(filepath.Join(e.volumePath("data"), "data.csv"), []byte("changed\n"), 0o600)
	apply(t, e, vol)
	if b, _ := os.ReadFile(filepath.Join(e.volumePath("data"), "data.csv")); string(b) != "changed\n" {
		t.Fatalf("re-apply re-seeded the volume: %q", b)
	}
	if err := e.Delete(context.Background(), backend.Ref{Kind: "volume", Name: "data"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.volumePath("data")); !os.IsNotExist(err) {
		t.Fatalf("volume directory left behind: %v", err)
	}
}

func TestChangedSpecOfExistingJobIsRefused(t *testing.T) {
	e := newEngine(t, 0)
	apply(t, e, job("same", "true"))
	waitJob(t, e, "same", 20*time.Second, finished)
	_, err := e.Apply(context.Background(), []*spec.Document{{File: "x.yaml", Object: job("same", "false"), Dir: t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "delete job same") {
		t.Fatalf("err = %v, want a refusal naming the fix", err)
	}
	j, _ := e.GetJob(context.Background(), "same")
	if j.Phase != backend.JobComplete || j.Spec.Command[0] != "true" {
		t.Fatalf("the refused apply changed the job: %+v", j)
	}
}

func TestDiagnoseExplainsAFailedJob(t *testing.T) {
	e := newEngine(t, 0)
	j := job("diag", "no-such-program-petrel")
	j.Spec.BackoffLimit = ptr(int32(0))
	apply(t, e, j)
	waitJob(t, e, "diag", 20*time.Second, finished)
	fs, err := e.Diagnose(context.Background(), backend.Ref{Kind: "job", Name: "diag"})
	if err != nil {
		t.Fatal(err)
	}
	if !hasFinding(fs, func(f backend.Finding) bool {
		return f.RuleID == "container-start-error" && f.Permanent && strings.Contains(f.Message, "no-such-program-petrel")
	}) {
		t.Fatalf("no permanent start-error finding naming the command: %+v", fs)
	}
}

func hasFinding(fs []backend.Finding, match func(backend.Finding) bool) bool {
	for _, f := range fs {
		if match(f) {
			return true
		}
	}
	return false
}

func TestSecretsAreMaskedInStatusButReachTheWorkload(t *testing.T) {
	e := newEngine(t, 0)
	j := job("secret", "sh", "-c", "test \"$TOKEN\" = s3cr3t && echo token-ok")
	j.Spec.Env = []v1alpha1.EnvVar{{Name: "TOKEN", Value: "s3cr3t", Secret: true}, {Name: "PLAIN", Value: "visible"}}
	apply(t, e, j)
	got := waitJob(t, e, "secret", 20*time.Second, finished)
	if got.Phase != backend.JobComplete {
		t.Fatalf("the workload did not see its secret: %s %+v", got.Phase, got.Attempts)
	}
	if got.Spec.Env[0].Value != v1alpha1.SecretMask || got.Spec.Env[1].Value != "visible" {
		t.Fatalf("status env %+v", got.Spec.Env)
	}
	jobs, _ := e.ListJobs(context.Background())
	for _, lj := range jobs {
		for _, ev := range lj.Spec.Env {
			if ev.Value == "s3cr3t" {
				t.Fatal("ListJobs returned a secret value")
			}
		}
	}
}

func TestTTLSecondsAfterFinishedRemovesTheRecord(t *testing.T) {
	e := newEngine(t, 0)
	j := job("ttl", "true")
	j.Spec.TTLSecondsAfterFinished = ptr(int32(1))
	apply(t, e, j)
	waitJob(t, e, "ttl", 20*time.Second, finished)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.GetJob(context.Background(), "ttl"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job still recorded 10s after a 1s TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(e.jobDir("ttl")); !os.IsNotExist(err) {
		t.Fatalf("job directory left behind: %v", err)
	}
}

func TestFailedAttemptKeepsItsLastLogLinesForDiagnosis(t *testing.T) {
	e := newEngine(t, 0)
	j := job("cudaoom", "sh", "-c", "echo loading; echo 'RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB' >&2; exit 1")
	j.Spec.BackoffLimit = ptr(int32(0))
	apply(t, e, j)
	got := waitJob(t, e, "cudaoom", 20*time.Second, finished)
	if tail := got.Attempts[0].LogTail; len(tail) != 2 || !strings.Contains(tail[1], "CUDA out of memory") {
		t.Fatalf("log tail %q", tail)
	}
	fs, _ := e.Diagnose(context.Background(), backend.Ref{Kind: "job", Name: "cudaoom"})
	if !hasFinding(fs, func(f backend.Finding) bool { return f.RuleID == "gpu-out-of-memory" }) {
		t.Fatalf("no gpu-out-of-memory finding: %+v", fs)
	}
}

func TestKilledShimLeavesNoWorkloadBehind(t *testing.T) {
	e := newEngine(t, 0)
	j := job("orphan", "sh", "-c", "setsid sleep 60 & sleep 60")
	j.Spec.BackoffLimit = ptr(int32(0))
	apply(t, e, j)
	var p ShimPids
	for i := 0; i < 500; i++ {
		if node.ReadJSON(filepath.Join(attemptDir(e.jobDir("orphan"), 0), node.PidsFile), &p) == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var escaped int
	if CgroupSupport() == nil {
		// Find the setsid'ed sleep: a process whose session is not the workload's.
		for i := 0; i < 200 && escaped == 0; i++ {
			var cfg node.ShimConfig
			_ = node.ReadJSON(filepath.Join(attemptDir(e.jobDir("orphan"), 0), node.ConfigFile), &cfg)
			for _, pid := range childrenOfSession(t, p.Pid, cfg.Cgroup) {
				escaped = pid
			}
			time.Sleep(10 * time.Millisecond)
		}
		if escaped == 0 {
			t.Fatal("did not find the setsid'ed process in the attempt's cgroup")
		}
	}
	if err := syscall.Kill(p.ShimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, e, "orphan", 20*time.Second, finished)
	if got.Phase != backend.JobFailed || !strings.Contains(got.Attempts[0].Message, "without recording an exit status") {
		t.Fatalf("phase %s attempt %+v", got.Phase, got.Attempts[0])
	}
	if left := groupAlive(p.Pid); len(left) > 0 {
		t.Fatalf("the workload's process group survived its shim: %v", left)
	}
	if escaped != 0 && syscall.Kill(escaped, 0) == nil && !isZombie(escaped) {
		t.Fatalf("process %d that left the process group survived the attempt", escaped)
	}
}

// childrenOfSession lists sleep processes in the workload's cgroup that are
// not in its process group (they called setsid).
func childrenOfSession(t *testing.T, pgid int, cgroup string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(b), "sleep\x0060") {
			continue
		}
		st, _ := os.ReadFile("/proc/" + d.Name() + "/stat")
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		cg, _ := os.ReadFile("/proc/" + d.Name() + "/cgroup")
		if len(f) > 2 && f[2] != strconv.Itoa(pgid) && cgroup != "" && strings.Contains(string(cg), cgroup+"\n") {
			out = append(out, pid)
		}
	}
	return out
}

func isZombie(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(st)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] == "Z"
}

func TestSecretNeverAppearsInStartErrors(t *testing.T) {
	e := newEngine(t, 0)
	j := job("leak", "/opt/$(TOKEN)/bin")
	j.Spec.Env = []v1alpha1.EnvVar{{Name: "TOKEN", Value: "hunter2sekrit", Secret: true}}
	j.Spec.BackoffLimit = ptr(int32(0))
	apply(t, e, j)
	got := waitJob(t, e, "leak", 20*time.Second, finished)
	var out strings.Builder
	_ = e.Logs(context.Background(), backend.Ref{Kind: "job", Name: "leak"}, backend.LogOptions{Attempt: -1}, &out)
	all := fmt.Sprintf("%+v %s", got, out.String())
	if strings.Contains(all, "hunter2sekrit") {
		t.Fatalf("secret leaked: %s", all)
	}
	if !strings.Contains(got.Attempts[0].Message, "/opt/******/bin") {
		t.Fatalf("message %q should name the masked path", got.Attempts[0].Message)
	}
}
