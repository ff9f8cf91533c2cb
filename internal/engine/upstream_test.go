package engine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	jobctl "github.com/petrel-dev/petrel/internal/engine/controllers/job"
	"github.com/petrel-dev/petrel/internal/engine/node"
	"github.com/petrel-dev/petrel/internal/spec"
)

// These tests run the Job controller's upstream rules (issue 8, points
// 1–4 and 8) on the real engine with real processes. The decision itself
// is table-tested in controllers/job.

func condTypes(j backend.Job) string {
	var out []string
	for _, c := range j.Conditions {
		out = append(out, c.Type+"/"+c.Reason)
	}
	return strings.Join(out, ",")
}

// Point 1: an ignored failure does not count against backoffLimit but
// still delays the next pod like any failed pod.
func TestIgnoredFailuresAreRetriedAfterTheBackoff(t *testing.T) {
	base := 300 * time.Millisecond
	e, err := New(Config{Home: t.TempDir(), BackoffBase: base, BackoffMax: 2 * time.Second,
		GPUs: FakeGPUs(0), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	j := job("ignored", "sh", "-c", "exit 3")
	j.Spec.BackoffLimit = ptr(int32(0))
	j.Spec.PodFailurePolicy = &v1alpha1.PodFailurePolicy{Rules: []v1alpha1.PodFailurePolicyRule{{Action: v1alpha1.PodFailurePolicyActionIgnore,
		OnExitCodes: &v1alpha1.PodFailurePolicyOnExitCodesRequirement{Operator: "In", Values: []int32{3}}}}}
	apply(t, e, j)
	got := waitJob(t, e, "ignored", 30*time.Second, func(j backend.Job) bool { return len(j.Attempts) >= 4 })
	defer e.Delete(context.Background(), backend.Ref{Kind: "job", Name: "ignored"})
	if got.Finished() {
		t.Fatalf("a job whose failures are all ignored finished: %s", condTypes(got))
	}
	bo := jobctl.Backoff{Base: base, Max: 2 * time.Second}
	for i := 1; i < 4; i++ {
		prev, next := got.Attempts[i-1], got.Attempts[i]
		if !prev.Ignored {
			t.Errorf("attempt %d not marked ignored", i-1)
		}
		gap := next.StartTime.Sub(*prev.EndTime)
		if want := bo.Delay(i); gap < want {
			t.Errorf("attempt %d started %s after attempt %d ended, before the back-off of %s", i, gap, i-1, want)
		}
	}
	if got.Failed != 0 {
		t.Errorf("status.failed = %d, want 0 (ignored failures are not counted)", got.Failed)
	}
}

// Point 2: activeDeadlineSeconds counts from the job's start, including
// the time spent waiting for GPUs.
func TestDeadlineCountsTimeSpentWaitingForGPUs(t *testing.T) {
	e := newEngine(t, 1)
	holder := job("holder", "sleep", "30")
	holder.Spec.Resources.GPU = 1
	apply(t, e, holder)
	waitJob(t, e, "holder", 10*time.Second, func(j backend.Job) bool { return j.Phase == backend.JobRunning })
	short := job("short", "true")
	short.Spec.Resources.GPU = 1
	short.Spec.ActiveDeadlineSeconds = ptr(int64(1))
	apply(t, e, short)
	got := waitJob(t, e, "short", 20*time.Second, finished)
	if got.Phase != backend.JobFailed || reason(got) != backend.ReasonDeadlineExceeded || len(got.Attempts) != 0 {
		t.Fatalf("short: %s %s attempts=%d, want Failed DeadlineExceeded without an attempt", got.Phase, condTypes(got), len(got.Attempts))
	}
	if got.StartTime == nil || got.StartTime.After(got.CreationTime.Add(5*time.Second)) {
		t.Errorf("startTime %v should be set at the first sync (created %v)", got.StartTime, got.CreationTime)
	}
	// Point 8: upstream's wording.
	if c := got.FinalCondition(); c.Message != "Job was active longer than specified deadline" {
		t.Errorf("message = %q", c.Message)
	}
}

// Point 3: when a failure over backoffLimit and a passed deadline are seen
// in the same sync, backoffLimit wins, as in syncJob. A server that was
// down while both happened sees them together.
func TestBackoffLimitIsCheckedBeforeTheDeadline(t *testing.T) {
	home := t.TempDir()
	cfg := Config{Home: home, BackoffBase: 100 * time.Millisecond, GPUs: FakeGPUs(0), ShimArgv: []string{os.Args[0], "-shim"}, Logf: t.Logf}
	e1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j := job("both", "sh", "-c", "sleep 0.5; exit 1")
	j.Spec.BackoffLimit = ptr(int32(0))
	j.Spec.ActiveDeadlineSeconds = ptr(int64(2))
	apply(t, e1, j)
	waitJob(t, e1, "both", 10*time.Second, func(j backend.Job) bool { return j.Phase == backend.JobRunning })
	e1.Close()
	status := filepath.Join(attemptDir(filepath.Join(home, "jobs", "both"), 0), node.StatusFile)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(status); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the attempt never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Wait until the deadline has passed too, then restart the server.
	for time.Since(readStart(t, home)) < 2500*time.Millisecond {
		time.Sleep(100 * time.Millisecond)
	}
	e2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	got := waitJob(t, e2, "both", 20*time.Second, finished)
	if want := "FailureTarget/BackoffLimitExceeded,Failed/BackoffLimitExceeded"; condTypes(got) != want {
		t.Fatalf("conditions = %s, want %s", condTypes(got), want)
	}
}

func readStart(t *testing.T, home string) time.Time {
	t.Helper()
	st, err := openStore(filepath.Join(home, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs, err := st.loadJobs(context.Background(), allJobs)
	if err != nil || len(jobs) != 1 || jobs[0].StartTime == nil {
		t.Fatalf("stored job: %v %+v", err, jobs)
	}
	return *jobs[0].StartTime
}

// Point 4: FailureTarget first; Failed only once the pod has terminated
// (not while it is in its grace period).
func TestFailedIsSetOnlyOnceThePodHasTerminated(t *testing.T) {
	e := newEngine(t, 0)
	j := job("graceful", "sh", "-c", "trap 'sleep 1.5; exit 143' TERM; sleep 30 & wait")
	j.Spec.ActiveDeadlineSeconds = ptr(int64(1))
	j.Spec.TerminationGracePeriodSeconds = ptr(int64(10))
	apply(t, e, j)
	interim := waitJob(t, e, "graceful", 20*time.Second, func(j backend.Job) bool {
		return strings.Contains(condTypes(j), "FailureTarget") || j.Finished()
	})
	if interim.Finished() || interim.Phase != backend.JobRunning || interim.Attempts[0].Phase != backend.PodRunning {
		t.Fatalf("while the attempt terminates: phase %s, conditions %s, attempt %s; want Running with FailureTarget only",
			interim.Phase, condTypes(interim), interim.Attempts[0].Phase)
	}
	got := waitJob(t, e, "graceful", 20*time.Second, finished)
	if want := "FailureTarget/DeadlineExceeded,Failed/DeadlineExceeded"; condTypes(got) != want {
		t.Fatalf("conditions = %s, want %s", condTypes(got), want)
	}
	failed := got.FinalCondition()
	if end := got.Attempts[0].EndTime; end == nil || failed.LastTransitionTime.Before(*end) {
		t.Errorf("Failed at %v, before the attempt ended at %v", failed.LastTransitionTime, end)
	}
}

// Point 4, success side: SuccessCriteriaMet then Complete.
func TestCompleteFollowsSuccessCriteriaMet(t *testing.T) {
	e := newEngine(t, 0)
	apply(t, e, job("ok", "true"))
	got := waitJob(t, e, "ok", 20*time.Second, finished)
	if want := "SuccessCriteriaMet/CompletionsReached,Complete/CompletionsReached"; condTypes(got) != want {
		t.Fatalf("conditions = %s, want %s", condTypes(got), want)
	}
}

// A service asking for GPUs gets exclusive devices from the same
// allocator as jobs, waits for them like a job, and one asking for more
// than the machine has is rejected at apply.
func TestServiceReplicasGetExclusiveGPUs(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed")
	}
	e := newEngine(t, 1)
	t.Cleanup(func() { _ = e.Delete(context.Background(), backend.Ref{Kind: "service", Name: "gpu-svc"}) })
	svc := func(name string, gpus int32, replicas int32) *v1alpha1.InferenceService {
		return inferenceService(name, v1alpha1.InferenceServiceSpec{
			PodTemplate: v1alpha1.PodTemplate{
				Command:                       []string{"sh", "-c", "echo devices=$CUDA_VISIBLE_DEVICES; exec python3 -m http.server $PORT --bind 127.0.0.1"},
				Resources:                     v1alpha1.Resources{GPU: gpus},
				TerminationGracePeriodSeconds: ptr(int64(2)),
			},
			Port: 8080, Replicas: ptr(replicas),
			ReadinessProbe: &v1alpha1.Probe{HTTPGet: v1alpha1.HTTPGetAction{Path: "/"}, PeriodSeconds: 1},
		})
	}
	// More GPUs than the machine has: refused at apply, nothing recorded.
	_, err := e.Apply(context.Background(), []*spec.Document{{File: "s.yaml", Object: svc("greedy", 5, 1), Dir: t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "asks for 5 GPUs") {
		t.Fatalf("err = %v, want a rejection at apply", err)
	}
	if _, err := e.GetService(context.Background(), "greedy"); err == nil {
		t.Fatal("a rejected service was recorded")
	}

	// Two replicas of 1 GPU on a 1-GPU machine: one runs with device 0, the
	// other waits Pending (unschedulable), not crash-looping.
	apply(t, e, svc("gpu-svc", 1, 2))
	s := waitService(t, e, "gpu-svc", 30*time.Second, "one replica ready and one unschedulable", func(s backend.Service) bool {
		ready, waiting := 0, 0
		for _, r := range s.Replicas {
			if r.Ready {
				ready++
			}
			if r.Phase == "Pending" && r.LastReason == "Unschedulable" {
				waiting++
			}
		}
		return ready == 1 && waiting == 1
	})
	var out strings.Builder
	for _, r := range s.Replicas {
		if r.Ready {
			_ = e.Logs(context.Background(), backend.Ref{Kind: "service", Name: "gpu-svc"}, backend.LogOptions{Replica: r.Index, Attempt: -1}, &out)
		}
	}
	if !strings.Contains(out.String(), "devices=0") {
		t.Errorf("the ready replica's log %q does not show CUDA_VISIBLE_DEVICES=0", out.String())
	}
	// A job asking for the GPU the replica holds waits for it.
	gj := job("gpu-job", "sh", "-c", "echo devices=$CUDA_VISIBLE_DEVICES")
	gj.Spec.Resources.GPU = 1
	apply(t, e, gj)
	w := waitJob(t, e, "gpu-job", 10*time.Second, func(j backend.Job) bool { return j.Waiting != nil || len(j.Attempts) > 0 })
	if w.Waiting == nil || w.Waiting.Reason != backend.WaitingForGPUs {
		t.Fatalf("gpu-job: waiting %v attempts %d; want it to wait for the replica's GPU", w.Waiting, len(w.Attempts))
	}
	// Deleting the service releases its GPU: the job runs.
	if err := e.Delete(context.Background(), backend.Ref{Kind: "service", Name: "gpu-svc"}); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, e, "gpu-job", 30*time.Second, finished)
	if got.Phase != backend.JobComplete || len(got.Attempts) != 1 || strings.Join(got.Attempts[0].GPUs, ",") != "0" {
		t.Fatalf("gpu-job: %s attempts %+v", got.Phase, got.Attempts)
	}
}

// The kubelet waits at least 2 s between SIGTERM and SIGKILL, even with
// terminationGracePeriodSeconds: 0 (minimumGracePeriodInSeconds).
func TestGracePeriodHasTheKubeletsTwoSecondMinimum(t *testing.T) {
	e := newEngine(t, 0)
	j := job("quick-grace", "sh", "-c", "trap 'sleep 1; echo cleaned-up; exit 143' TERM; echo started; sleep 30 & wait")
	j.Spec.ActiveDeadlineSeconds = ptr(int64(1))
	j.Spec.TerminationGracePeriodSeconds = ptr(int64(0))
	apply(t, e, j)
	waitJob(t, e, "quick-grace", 20*time.Second, finished)
	var out strings.Builder
	if err := e.Logs(context.Background(), backend.Ref{Kind: "job", Name: "quick-grace"}, backend.LogOptions{Attempt: 0}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cleaned-up") {
		t.Fatalf("log %q: the SIGTERM handler did not get its second before SIGKILL", out.String())
	}
}

// A job runs with the submitting shell's PATH (spec.Document.ShellEnv laid
// over the server's environment): a tool only an activated virtualenv
// provides is found, and the job records the environment it ran with.
func TestJobRunsWithTheSubmittingShellsPath(t *testing.T) {
	e := newEngine(t, 0)
	venv := t.TempDir()
	tool := filepath.Join(venv, "only-in-venv")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\necho venv-tool-ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	shell := map[string]string{"PATH": venv + ":" + os.Getenv("PATH"), "VIRTUAL_ENV": venv}
	j := job("venv", "only-in-venv")
	j.Metadata.Labels = map[string]string{"team": "ml"}
	if _, err := e.Apply(context.Background(), []*spec.Document{{File: "v.yaml", Object: j, Dir: t.TempDir(), ShellEnv: shell}}); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, e, "venv", 20*time.Second, finished)
	if got.Phase != backend.JobComplete {
		t.Fatalf("venv: %s %+v", got.Phase, got.Attempts)
	}
	if got.ShellEnv["VIRTUAL_ENV"] != venv || got.Labels["team"] != "ml" {
		t.Errorf("recorded shell env %v, labels %v", got.ShellEnv, got.Labels)
	}
}
