package job

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func at(s float64) *time.Time {
	t := t0.Add(time.Duration(s * float64(time.Second)))
	return &t
}

func code(c int32) *int32 { return &c }

func failedPod(name string, exit int32, endS float64) Pod {
	return Pod{Name: name, Phase: backend.PodFailed, ExitCode: code(exit), EndTime: at(endS)}
}

func types(cs []backend.Condition) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Type+"/"+c.Reason)
	}
	return strings.Join(out, ",")
}

var defaultBackoff = Backoff{Base: DefaultBackoff, Max: MaxBackoff}

func ignoreRule(codes ...int32) *v1alpha1.PodFailurePolicy {
	return &v1alpha1.PodFailurePolicy{Rules: []v1alpha1.PodFailurePolicyRule{{Action: v1alpha1.PodFailurePolicyActionIgnore,
		OnExitCodes: &v1alpha1.PodFailurePolicyOnExitCodesRequirement{Operator: "In", Values: codes}}}}
}

func failJobRule(codes ...int32) *v1alpha1.PodFailurePolicy {
	return &v1alpha1.PodFailurePolicy{Rules: []v1alpha1.PodFailurePolicyRule{{Action: v1alpha1.PodFailurePolicyActionFailJob,
		OnExitCodes: &v1alpha1.PodFailurePolicyOnExitCodesRequirement{Operator: "In", Values: codes}}}}
}

func disruptionIgnored() *v1alpha1.PodFailurePolicy {
	return &v1alpha1.PodFailurePolicy{Rules: []v1alpha1.PodFailurePolicyRule{{Action: v1alpha1.PodFailurePolicyActionIgnore,
		OnPodConditions: []v1alpha1.PodFailurePolicyOnPodConditionsPattern{{Type: v1alpha1.PodConditionDisruptionTarget}}}}}
}

func i32(v int32) *int32 { return &v }
func i64(v int64) *int64 { return &v }

func TestSync(t *testing.T) {
	started := Job{StartTime: at(0)}
	withSpec := func(f func(*v1alpha1.TrainingJobSpec)) Job {
		j := started
		f(&j.Spec)
		return j
	}
	tests := []struct {
		name string
		job  Job
		pods []Pod
		now  float64
		// want
		conditions   string
		create       int
		deleteActive bool
		waiting      backend.WaitingReason
		requeue      time.Duration
		setStart     bool
	}{
		{name: "a new job records its start time and creates a pod", job: Job{}, now: 0, setStart: true, create: 1},
		{name: "a running pod is left alone", job: started, pods: []Pod{{Name: "j-0", Phase: backend.PodRunning}}, now: 5},
		{name: "a succeeded pod sets SuccessCriteriaMet then Complete in one sync",
			job: started, pods: []Pod{{Name: "j-0", Phase: backend.PodSucceeded, ExitCode: code(0), EndTime: at(3)}}, now: 3,
			conditions: "SuccessCriteriaMet/CompletionsReached,Complete/CompletionsReached"},
		{name: "the first failure waits the 10 s back-off",
			job: started, pods: []Pod{failedPod("j-0", 1, 2)}, now: 3,
			waiting: backend.WaitingBackOff, requeue: 9 * time.Second},
		{name: "after the back-off the next pod is created",
			job: started, pods: []Pod{failedPod("j-0", 1, 2)}, now: 12, create: 1},
		{name: "the back-off doubles per consecutive failure",
			job: started, pods: []Pod{failedPod("j-0", 1, 2), failedPod("j-1", 1, 14)}, now: 14,
			waiting: backend.WaitingBackOff, requeue: 20 * time.Second},
		{name: "the back-off is capped at 10 minutes (MaxJobPodFailureBackOff, v1.37)",
			job: withSpec(func(s *v1alpha1.TrainingJobSpec) { s.BackoffLimit = i32(10) }), pods: func() []Pod {
				var ps []Pod
				for i := 0; i < 7; i++ {
					ps = append(ps, failedPod("p", 1, float64(i)))
				}
				return ps
			}(), now: 6,
			waiting: backend.WaitingBackOff, requeue: 10 * time.Minute},
		{name: "backoffLimit: failures over the limit fail the job",
			job:  withSpec(func(s *v1alpha1.TrainingJobSpec) { s.BackoffLimit = i32(1) }),
			pods: []Pod{failedPod("j-0", 1, 1), failedPod("j-1", 1, 12)}, now: 12,
			conditions: "FailureTarget/BackoffLimitExceeded,Failed/BackoffLimitExceeded"},
		{name: "a disrupted pod matching onPodConditions DisruptionTarget Ignore does not count",
			job: withSpec(func(s *v1alpha1.TrainingJobSpec) {
				s.BackoffLimit = i32(0)
				s.PodFailurePolicy = disruptionIgnored()
			}),
			pods: []Pod{{Name: "j-0", Phase: backend.PodFailed, ExitCode: code(143), EndTime: at(1), DisruptionTarget: true}}, now: 40, create: 1},
		{name: "the same exit without DisruptionTarget counts",
			job: withSpec(func(s *v1alpha1.TrainingJobSpec) {
				s.BackoffLimit = i32(0)
				s.PodFailurePolicy = disruptionIgnored()
			}),
			pods: []Pod{failedPod("j-0", 143, 1)}, now: 40,
			conditions: "FailureTarget/BackoffLimitExceeded,Failed/BackoffLimitExceeded"},
		{name: "ignored failures do not count against backoffLimit",
			job: withSpec(func(s *v1alpha1.TrainingJobSpec) {
				s.BackoffLimit = i32(0)
				s.PodFailurePolicy = ignoreRule(3)
			}),
			pods: []Pod{failedPod("j-0", 3, 1), failedPod("j-1", 3, 12)}, now: 40, create: 1},
		{name: "ignored failures still delay the next pod like any failure (upstream point 1)",
			job: withSpec(func(s *v1alpha1.TrainingJobSpec) {
				s.BackoffLimit = i32(0)
				s.PodFailurePolicy = ignoreRule(3)
			}),
			pods: []Pod{failedPod("j-0", 3, 1), failedPod("j-1", 3, 12)}, now: 13,
			waiting: backend.WaitingBackOff, requeue: 19 * time.Second},
		{name: "a FailJob rule fails the job at once, over backoffLimit",
			job:  withSpec(func(s *v1alpha1.TrainingJobSpec) { s.PodFailurePolicy = failJobRule(42) }),
			pods: []Pod{failedPod("j-0", 42, 1)}, now: 1,
			conditions: "FailureTarget/PodFailurePolicy,Failed/PodFailurePolicy"},
		{name: "the deadline counts from the start time, before any pod ran (waiting for GPUs)",
			job: withSpec(func(s *v1alpha1.TrainingJobSpec) { s.ActiveDeadlineSeconds = i64(5) }), now: 5,
			conditions: "FailureTarget/DeadlineExceeded,Failed/DeadlineExceeded"},
		{name: "before the deadline a sync is asked for at the deadline",
			job:  withSpec(func(s *v1alpha1.TrainingJobSpec) { s.ActiveDeadlineSeconds = i64(5) }),
			pods: []Pod{{Name: "j-0", Phase: backend.PodRunning}}, now: 2, requeue: 3 * time.Second},
		{name: "backoffLimit is checked before the deadline in the same sync (upstream point 3)",
			job: withSpec(func(s *v1alpha1.TrainingJobSpec) {
				s.ActiveDeadlineSeconds = i64(5)
				s.BackoffLimit = i32(0)
			}),
			pods: []Pod{failedPod("j-0", 1, 6)}, now: 6,
			conditions: "FailureTarget/BackoffLimitExceeded,Failed/BackoffLimitExceeded"},
		{name: "past the deadline an active pod is deleted and only FailureTarget is set (upstream point 4)",
			job:  withSpec(func(s *v1alpha1.TrainingJobSpec) { s.ActiveDeadlineSeconds = i64(5) }),
			pods: []Pod{{Name: "j-0", Phase: backend.PodRunning}}, now: 5,
			conditions: "FailureTarget/DeadlineExceeded", deleteActive: true},
		{name: "while the pod terminates the job stays without Failed",
			job: Job{StartTime: at(0), Spec: v1alpha1.TrainingJobSpec{ActiveDeadlineSeconds: i64(5)},
				Conditions: []backend.Condition{*condition(backend.ConditionFailureTarget, backend.ReasonDeadlineExceeded, backend.MessageDeadlineExceeded, *at(5))}},
			pods: []Pod{{Name: "j-0", Phase: backend.PodRunning, Terminating: true}}, now: 6},
		{name: "once the pod has terminated Failed follows the FailureTarget",
			job: Job{StartTime: at(0), Spec: v1alpha1.TrainingJobSpec{ActiveDeadlineSeconds: i64(5)},
				Conditions: []backend.Condition{*condition(backend.ConditionFailureTarget, backend.ReasonDeadlineExceeded, backend.MessageDeadlineExceeded, *at(5))}},
			pods: []Pod{failedPod("j-0", 143, 6)}, now: 7, conditions: "Failed/DeadlineExceeded"},
		{name: "a finished job does nothing",
			job:  Job{StartTime: at(0), Conditions: []backend.Condition{{Type: backend.ConditionFailed, Status: "True"}}},
			pods: []Pod{failedPod("j-0", 1, 1)}, now: 100},
		{name: "a success resets the back-off count",
			job:  started,
			pods: []Pod{failedPod("a", 1, 1), {Name: "b", Phase: backend.PodSucceeded, EndTime: at(2)}}, now: 2,
			conditions: "SuccessCriteriaMet/CompletionsReached,Complete/CompletionsReached"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			act := Sync(tc.job, tc.pods, *at(tc.now), defaultBackoff)
			if got := types(act.AddConditions); got != tc.conditions {
				t.Errorf("conditions = %q, want %q", got, tc.conditions)
			}
			if act.CreatePods != tc.create {
				t.Errorf("create = %d, want %d", act.CreatePods, tc.create)
			}
			if act.DeleteActive != tc.deleteActive {
				t.Errorf("deleteActive = %v, want %v", act.DeleteActive, tc.deleteActive)
			}
			var w backend.WaitingReason
			if act.Waiting != nil {
				w = act.Waiting.Reason
			}
			if w != tc.waiting {
				t.Errorf("waiting = %q, want %q", w, tc.waiting)
			}
			if act.RequeueAfter != tc.requeue {
				t.Errorf("requeueAfter = %s, want %s", act.RequeueAfter, tc.requeue)
			}
			if act.SetStartTime != tc.setStart {
				t.Errorf("setStartTime = %v, want %v", act.SetStartTime, tc.setStart)
			}
		})
	}
}

func TestSyncMessagesUseUpstreamWording(t *testing.T) {
	j := Job{StartTime: at(0), Spec: v1alpha1.TrainingJobSpec{ActiveDeadlineSeconds: i64(1)}}
	act := Sync(j, nil, *at(2), defaultBackoff)
	if len(act.AddConditions) != 2 || act.AddConditions[1].Message != "Job was active longer than specified deadline" {
		t.Fatalf("deadline conditions = %+v", act.AddConditions)
	}
	j = Job{StartTime: at(0), Spec: v1alpha1.TrainingJobSpec{PodFailurePolicy: failJobRule(42)}}
	act = Sync(j, []Pod{failedPod("train-0", 42, 1)}, *at(1), defaultBackoff)
	want := "Container main for pod train-0 failed with exit code 42 matching FailJob rule at index 0"
	if act.AddConditions[0].Message != want {
		t.Errorf("FailJob message = %q, want %q", act.AddConditions[0].Message, want)
	}
}

func TestSyncReportsIgnoredPods(t *testing.T) {
	j := Job{StartTime: at(0), Spec: v1alpha1.TrainingJobSpec{PodFailurePolicy: ignoreRule(3)}}
	act := Sync(j, []Pod{failedPod("a", 3, 1), failedPod("b", 1, 2)}, *at(100), defaultBackoff)
	if !reflect.DeepEqual(act.Ignored, map[string]bool{"a": true}) {
		t.Errorf("ignored = %v, want only a", act.Ignored)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 10 * time.Second, Max: 10 * time.Minute}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 320 * time.Second, 10 * time.Minute, 10 * time.Minute}
	for n, w := range want {
		if got := b.Delay(n); got != w {
			t.Errorf("Delay(%d) = %s, want %s", n, got, w)
		}
	}
}
