package diagnose

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

func i32(v int32) *int32 { return &v }

func attempt(i int, code int32, reason, msg string) backend.Attempt {
	end := time.Date(2026, 11, 28, 10, i, 0, 0, time.UTC)
	return backend.Attempt{Index: i, Name: "train-" + string(rune('0'+i)), Phase: "Failed", ExitCode: &code, Reason: reason, Message: msg, EndTime: &end}
}

func hasFinding(t *testing.T, fs []backend.Finding, rule string, permanent bool, words ...string) {
	t.Helper()
	for _, f := range fs {
		if f.RuleID != rule {
			continue
		}
		if f.Permanent != permanent {
			t.Errorf("%s: permanent = %v, want %v", rule, f.Permanent, permanent)
		}
		text := findingText(f)
		for _, w := range words {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", rule, w, text)
			}
		}
		return
	}
	t.Errorf("no %s finding; got:\n%s", rule, dump(fs))
}

func TestAnalyzeJob(t *testing.T) {
	mem := resource.MustParse("512Mi")
	failed := func(reason, msg string, as ...backend.Attempt) backend.Job {
		return backend.Job{
			Name: "train", Phase: backend.JobFailed, Attempts: as, Failed: int32(len(as)),
			Spec:       v1alpha1.TrainingJobSpec{BackoffLimit: i32(1), PodTemplate: v1alpha1.PodTemplate{Resources: v1alpha1.Resources{Memory: &mem}}},
			Conditions: []backend.Condition{{Type: backend.ConditionFailed, Status: "True", Reason: reason, Message: msg}},
		}
	}
	t.Run("OOM kills lead to backoffLimit", func(t *testing.T) {
		fs := AnalyzeJob(failed(backend.ReasonBackoffLimitExceeded, "Job has reached the specified backoff limit",
			attempt(0, 137, backend.ReasonOOMKilled, ""), attempt(1, 137, backend.ReasonOOMKilled, "")))
		hasFinding(t, fs, "oom-killed", true, "limit of 512Mi", "(2 of 2 attempts)", "attempt 1 (train-1)")
		hasFinding(t, fs, "job-backoff-limit-exceeded", true, "2 attempts failed", "exit code 137 (SIGKILL)", "backoffLimit 1")
	})
	t.Run("command not found is a start error", func(t *testing.T) {
		fs := AnalyzeJob(failed(backend.ReasonBackoffLimitExceeded, "", attempt(0, 127, backend.ReasonStartError, `exec: "pythn": executable file not found in $PATH`)))
		hasFinding(t, fs, "container-start-error", true, "pythn", "spec.command")
	})
	t.Run("deadline", func(t *testing.T) {
		j := failed(backend.ReasonDeadlineExceeded, "Job was active longer than specified deadline", attempt(0, 137, backend.ReasonDeadlineExceeded, ""))
		j.Spec.ActiveDeadlineSeconds = new(int64)
		*j.Spec.ActiveDeadlineSeconds = 600
		fs := AnalyzeJob(j)
		hasFinding(t, fs, "job-deadline-exceeded", true, "activeDeadlineSeconds 600")
		for _, f := range fs {
			if f.RuleID == "crash-loop" || f.RuleID == "oom-killed" {
				t.Errorf("deadline kill reported as %s", f.RuleID)
			}
		}
	})
	t.Run("shm signature in the attempt message", func(t *testing.T) {
		fs := AnalyzeJob(failed(backend.ReasonBackoffLimitExceeded, "", attempt(0, 1, backend.ReasonError, "RuntimeError: DataLoader worker (pid 125) is killed by signal: Bus error.")))
		hasFinding(t, fs, "shm-too-small", true, "Attempt 0 of job train", "/dev/shm")
	})
	t.Run("running job retrying", func(t *testing.T) {
		j := backend.Job{Name: "train", Phase: backend.JobRunning, Spec: v1alpha1.TrainingJobSpec{BackoffLimit: i32(4)},
			Attempts: []backend.Attempt{attempt(0, 2, backend.ReasonError, "")}, Waiting: &backend.Waiting{Reason: backend.WaitingBackOff, Message: "back-off 10s before attempt 2 (1 failed)"}}
		hasFinding(t, AnalyzeJob(j), "crash-loop", false, "1 of backoffLimit 4", "exit code 2 (a usage error)")
	})
	t.Run("a gang names the worker that failed first", func(t *testing.T) {
		a := attempt(0, 3, backend.ReasonError, "worker 2 failed first at 10:00:00.000 with exit code 3 (Error); worker 0, 1 stopped because of it")
		a.LogTail = []string{"Traceback (most recent call last):", "ValueError: shard 2 is empty"}
		end := *a.EndTime
		code, term := int32(3), int32(143)
		a.Workers = []backend.Worker{{Index: 0, Phase: "Failed", ExitCode: &term, EndTime: &end}, {Index: 1, Phase: "Failed", ExitCode: &term, EndTime: &end}, {Index: 2, Phase: "Failed", ExitCode: &code, EndTime: &end}}
		a.FailedWorker = new(int)
		*a.FailedWorker = 2
		j := backend.Job{Name: "train", Phase: backend.JobRunning, Spec: v1alpha1.TrainingJobSpec{BackoffLimit: i32(4)},
			Attempts: []backend.Attempt{a}, Waiting: &backend.Waiting{Reason: backend.WaitingBackOff, Message: "back-off 10s before attempt 2 (1 failed)"}}
		hasFinding(t, AnalyzeJob(j), "python-exception", false, "Worker 2 of attempt 0 of job train (the first of 3 to fail; the others were stopped because of it)",
			"log attempt 0 worker 2", "ValueError: shard 2 is empty")
		j.Attempts[0].LogTail = []string{"exiting"}
		hasFinding(t, AnalyzeJob(j), "crash-loop", false, "worker 2 of 3 failed first at 10:00:00 and the others were stopped because of it",
			"log attempt 0 worker 2", "exiting")
	})
	t.Run("waiting for GPUs is passing", func(t *testing.T) {
		j := backend.Job{Name: "train", Phase: backend.JobPending, Waiting: &backend.Waiting{Reason: backend.WaitingForGPUs, GPUsRequested: 2, GPUsFree: 1, Message: "waiting for 2 GPUs, 1 free"}}
		hasFinding(t, AnalyzeJob(j), "gpu-busy", false, "waits for 2 GPUs and only 1 are free")
	})
	t.Run("success after a failed attempt is fine", func(t *testing.T) {
		ok := int32(0)
		j := backend.Job{Name: "train", Phase: backend.JobComplete, Failed: 1, Succeeded: 1,
			Attempts:   []backend.Attempt{attempt(0, 1, backend.ReasonError, ""), {Index: 1, Phase: "Succeeded", ExitCode: &ok, Reason: backend.ReasonCompleted}},
			Conditions: []backend.Condition{{Type: backend.ConditionComplete, Status: "True"}}}
		if fs := AnalyzeJob(j); len(fs) != 0 {
			t.Errorf("false positives:\n%s", dump(fs))
		}
	})
}

func TestAnalyzeService(t *testing.T) {
	mem := resource.MustParse("1Gi")
	ev := func(typ, reason, msg string) backend.Event {
		return backend.Event{Type: typ, Reason: reason, Message: msg}
	}
	t.Run("liveness kills", func(t *testing.T) {
		s := backend.Service{Name: "digits", DesiredReplicas: 1,
			Replicas: []backend.Replica{{Name: "digits-0", Restarts: 3, LastReason: "LivenessProbeFailed"}},
			Events: []backend.Event{
				ev("Warning", "Unhealthy", "digits-0: Liveness probe failed: dial tcp 127.0.0.1:41234: connect: connection refused"),
				ev("Normal", "Killing", "digits-0: Container failed liveness probe, will be restarted"),
			}}
		hasFinding(t, AnalyzeService(s), "liveness-probe-restarts", true, "replica digits-0 of service digits", "nothing listens", "startupProbe")
	})
	t.Run("OOM and crash", func(t *testing.T) {
		s := backend.Service{Name: "llm", DesiredReplicas: 2, Spec: v1alpha1.InferenceServiceSpec{PodTemplate: v1alpha1.PodTemplate{Resources: v1alpha1.Resources{Memory: &mem}}},
			Replicas: []backend.Replica{{Name: "llm-0", Restarts: 2, LastReason: backend.ReasonOOMKilled}, {Name: "llm-1", Restarts: 5, LastReason: backend.ReasonError}},
			Events:   []backend.Event{ev("Warning", "BackOff", "replica llm-1 exited with code 1 (Error); restarting")}}
		fs := AnalyzeService(s)
		hasFinding(t, fs, "oom-killed", true, "limit of 1Gi")
		hasFinding(t, fs, "crash-loop", false, "llm-1", "exited with code 1")
	})
	t.Run("readiness, metric and flapping", func(t *testing.T) {
		s := backend.Service{Name: "api", DesiredReplicas: 2, ReadyReplicas: 1, Metric: "cpu <unknown> / 70%",
			Replicas: []backend.Replica{{Name: "api-0", Ready: true}, {Name: "api-1"}},
			Events: []backend.Event{
				ev("Warning", "Unhealthy", "api-1: Readiness probe failed: HTTP probe failed with statuscode: 503"),
				ev("Warning", "FailedGetResourceMetric", "missing request for cpu"),
				ev("Normal", "SuccessfulRescale", "New size: 4; reason: cpu above target"),
				ev("Normal", "SuccessfulRescale", "New size: 2; reason: All metrics below target"),
				ev("Normal", "SuccessfulRescale", "New size: 4; reason: cpu above target"),
				ev("Normal", "SuccessfulRescale", "New size: 2; reason: All metrics below target"),
			}}
		fs := AnalyzeService(s)
		hasFinding(t, fs, "readiness-probe-failing", false, "1 of 2 replicas ready", "statuscode: 503")
		hasFinding(t, fs, "hpa-metrics-unavailable", false, "<unknown>", "spec.resources.cpu")
		hasFinding(t, fs, "hpa-flapping", false, "2 changes of direction in 4 rescales", "stabilizationWindowSeconds: not set")
	})
	t.Run("healthy", func(t *testing.T) {
		s := backend.Service{Name: "ok", DesiredReplicas: 2, ReadyReplicas: 2,
			Replicas: []backend.Replica{{Name: "ok-0", Ready: true}, {Name: "ok-1", Ready: true}},
			Events:   []backend.Event{ev("Normal", "Started", "started replica ok-0"), ev("Normal", "SuccessfulRescale", "New size: 2; reason: cpu above target")}}
		if fs := AnalyzeService(s); len(fs) != 0 {
			t.Errorf("false positives:\n%s", dump(fs))
		}
	})
}

// The cause a failed attempt's log states comes before the outcome
// ("the Job failed"), whatever the two findings' permanence.
func TestLocalCauseIsListedBeforeTheOutcome(t *testing.T) {
	code := int32(1)
	end := time.Now()
	a := backend.Attempt{Index: 0, Name: "train-0", Phase: backend.PodFailed, ExitCode: &code, Reason: backend.ReasonError, EndTime: &end,
		LogTail: []string{"Traceback (most recent call last):", `  File "train.py", line 3, in <module>`, "ValueError: bad learning rate"}}
	j := backend.Job{Name: "train", Phase: backend.JobFailed, Attempts: []backend.Attempt{a}, Failed: 1,
		Spec:       v1alpha1.TrainingJobSpec{BackoffLimit: i32(0)},
		Conditions: []backend.Condition{{Type: backend.ConditionFailed, Status: "True", Reason: backend.ReasonBackoffLimitExceeded, Message: backend.MessageBackoffLimitExceeded}}}
	fs := AnalyzeJob(j)
	if len(fs) < 2 {
		t.Fatalf("findings:\n%s", dump(fs))
	}
	if summaryRules[fs[0].RuleID] || !summaryRules[fs[len(fs)-1].RuleID] {
		t.Errorf("the outcome is not last:\n%s", dump(fs))
	}
}
