// Package job is the local engine's Job controller: the decision the
// batch/v1 Job controller makes in one sync (syncJob, manageJob and the
// back-off record of pkg/controller/job in Kubernetes v1.37.2), as a pure
// function of the job, its pods and the time. The engine feeds it from the
// store and carries out what it returns; every rule about when a job
// starts a pod, retries, waits or finishes lives here, and only here.
package job

import (
	"fmt"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// Back-off defaults of the Job controller (pkg/controller/job):
// DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff (10 min in v1.37;
// older docs say 6 min).
const (
	DefaultBackoff = 10 * time.Second
	MaxBackoff     = 10 * time.Minute
)

// Backoff configures the pod failure back-off: Base × 2^(n−1) after n
// failures since the last success, capped at Max.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the back-off after failures consecutive failed pods
// (getRemainingTimeForFailuresCount, without the elapsed time).
func (b Backoff) Delay(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := b.Base
	for i := 1; i < failures; i++ {
		d *= 2
		if d >= b.Max {
			return b.Max
		}
	}
	return min(d, b.Max)
}

// Pod is what the controller reads of one pod (a local attempt).
type Pod struct {
	Name  string
	Phase backend.PodPhase
	// Terminating is true once the pod was asked to stop (SIGTERM sent)
	// and has not ended yet.
	Terminating bool
	ExitCode    *int32
	// EndTime is when a Succeeded or Failed pod ended.
	EndTime *time.Time
	// DisruptionTarget is true when the pod was stopped by a disruption
	// (preemption, eviction), as the pod condition DisruptionTarget=True.
	DisruptionTarget bool
}

// Job is what the controller reads of one job.
type Job struct {
	Spec       v1alpha1.TrainingJobSpec
	StartTime  *time.Time
	Conditions []backend.Condition
}

// Action is what one sync asks the engine to do.
type Action struct {
	// SetStartTime: record Now as the job's startTime (the first sync of
	// a job that is not suspended, before any pod exists).
	SetStartTime bool
	// AddConditions are conditions to append, in order: the interim
	// FailureTarget or SuccessCriteriaMet, then Failed or Complete.
	AddConditions []backend.Condition
	// DeleteActive: stop every active pod (SIGTERM, grace, SIGKILL).
	DeleteActive bool
	// CreatePods is how many pods to start now.
	CreatePods int
	// Waiting is why no pod is created although the job wants one (nil
	// when none is wanted or one is created). The engine fills in GPU
	// numbers when it cannot place a pod it was told to create.
	Waiting *backend.Waiting
	// RequeueAfter asks for another sync after this long (0: none), for
	// the deadline or the end of a back-off.
	RequeueAfter time.Duration
	// Ignored lists pods whose failure matched a podFailurePolicy Ignore
	// rule: they do not count against backoffLimit.
	Ignored map[string]bool
}

// Sync decides one reconcile of job j with pods (oldest first) at now,
// in the order of syncJob in Kubernetes v1.37.2:
//  1. a job that has Complete or Failed is done;
//  2. a pre-existing SuccessCriteriaMet or FailureTarget condition stands;
//  3. otherwise a failed pod matching a podFailurePolicy FailJob rule
//     sets FailureTarget (reason PodFailurePolicy);
//  4. otherwise failed pods (not counting Ignore matches) over
//     backoffLimit set FailureTarget (BackoffLimitExceeded) — checked
//     before the deadline;
//  5. otherwise a startTime older than activeDeadlineSeconds sets
//     FailureTarget (DeadlineExceeded); the deadline counts from
//     startTime, set at the first sync, so waiting for GPUs counts;
//  6. otherwise succeeded pods reaching completions (1) set
//     SuccessCriteriaMet;
//  7. with a FailureTarget or SuccessCriteriaMet, active pods are deleted
//     and Failed or Complete is added only once no pod is still active or
//     terminating (enactJobFinished);
//  8. otherwise a pod is created when none is active and the back-off of
//     consecutive failures since the last success (Ignore matches
//     included: they still delay the next pod) has passed.
func Sync(j Job, pods []Pod, now time.Time, bo Backoff) Action {
	var act Action
	if hasCondition(j.Conditions, backend.ConditionComplete) || hasCondition(j.Conditions, backend.ConditionFailed) {
		return act
	}
	start := j.StartTime
	if start == nil {
		act.SetStartTime = true
		start = &now
	}
	act.Ignored = map[string]bool{}
	var active, terminating, succeeded, failed int
	var failJob string
	for _, p := range pods {
		switch {
		case p.Phase == backend.PodSucceeded:
			succeeded++
		case p.Phase == backend.PodFailed:
			action, msg := matchPodFailurePolicy(j.Spec.PodFailurePolicy, p)
			switch action {
			case v1alpha1.PodFailurePolicyActionIgnore:
				act.Ignored[p.Name] = true
				continue
			case v1alpha1.PodFailurePolicyActionFailJob:
				if failJob == "" {
					failJob = msg
				}
			}
			failed++
		case p.Terminating:
			terminating++
		default:
			active++
		}
	}

	finished := findCondition(j.Conditions, backend.ConditionSuccessCriteriaMet)
	if finished == nil {
		finished = findCondition(j.Conditions, backend.ConditionFailureTarget)
	}
	var interim *backend.Condition
	if finished == nil {
		switch {
		case failJob != "":
			interim = condition(backend.ConditionFailureTarget, backend.ReasonPodFailurePolicy, failJob, now)
		case failed > int(j.Spec.EffectiveBackoffLimit()):
			interim = condition(backend.ConditionFailureTarget, backend.ReasonBackoffLimitExceeded, backend.MessageBackoffLimitExceeded, now)
		case pastDeadline(j.Spec.ActiveDeadlineSeconds, *start, now):
			interim = condition(backend.ConditionFailureTarget, backend.ReasonDeadlineExceeded, backend.MessageDeadlineExceeded, now)
		case succeeded >= 1:
			interim = condition(backend.ConditionSuccessCriteriaMet, backend.ReasonCompletionsReached, backend.MessageCompletionsReached, now)
		}
		if interim != nil {
			act.AddConditions = append(act.AddConditions, *interim)
			finished = interim
		} else if d := j.Spec.ActiveDeadlineSeconds; d != nil {
			act.RequeueAfter = start.Add(deadline(*d)).Sub(now)
		}
	}
	if finished != nil {
		if active > 0 {
			act.DeleteActive = true
			return act
		}
		if terminating > 0 {
			return act // Failed/Complete once no pod is terminating
		}
		final := backend.ConditionFailed
		if finished.Type == backend.ConditionSuccessCriteriaMet {
			final = backend.ConditionComplete
		}
		act.AddConditions = append(act.AddConditions, *condition(final, finished.Reason, finished.Message, now))
		act.RequeueAfter = 0
		return act
	}

	// manageJob: one pod at a time (parallelism = completions = 1).
	if active+terminating > 0 {
		return act
	}
	failures, last := failuresSinceLastSuccess(pods)
	if failures > 0 {
		at := last.Add(bo.Delay(failures))
		if now.Before(at) {
			act.Waiting = &backend.Waiting{Reason: backend.WaitingBackOff, Until: &at,
				Message: fmt.Sprintf("back-off %s before attempt %d (%d failed since the last success)", at.Sub(now).Round(100*time.Millisecond), len(pods), failures)}
			if act.RequeueAfter == 0 || at.Sub(now) < act.RequeueAfter {
				act.RequeueAfter = at.Sub(now)
			}
			return act
		}
	}
	act.CreatePods = 1
	return act
}

// failuresSinceLastSuccess counts failed pods that ended after the last
// succeeded pod, Ignore matches included, and returns the last failure's
// end (the backoffRecord's failuresAfterLastSuccess and lastFailureTime).
func failuresSinceLastSuccess(pods []Pod) (int, time.Time) {
	var lastSuccess, lastFailure time.Time
	for _, p := range pods {
		if p.Phase == backend.PodSucceeded && p.EndTime != nil && p.EndTime.After(lastSuccess) {
			lastSuccess = *p.EndTime
		}
	}
	n := 0
	for _, p := range pods {
		if p.Phase != backend.PodFailed || p.EndTime == nil || !p.EndTime.After(lastSuccess) {
			continue
		}
		n++
		if p.EndTime.After(lastFailure) {
			lastFailure = *p.EndTime
		}
	}
	return n, lastFailure
}

// matchPodFailurePolicy returns the action of the first rule that matches
// a failed pod and, for FailJob, the condition message
// (matchPodFailurePolicy in pkg/controller/job/pod_failure_policy.go).
// No match counts the failure.
func matchPodFailurePolicy(p *v1alpha1.PodFailurePolicy, pod Pod) (v1alpha1.PodFailurePolicyAction, string) {
	// The only pod condition this controller reads is DisruptionTarget,
	// present (True) only on a disrupted pod.
	i := p.Match(pod.ExitCode, func(typ, status string) bool {
		return typ == v1alpha1.PodConditionDisruptionTarget && status == "True" && pod.DisruptionTarget
	})
	if i < 0 {
		return v1alpha1.PodFailurePolicyActionCount, ""
	}
	rule := p.Rules[i]
	if rule.Action != v1alpha1.PodFailurePolicyActionFailJob {
		return rule.Action, ""
	}
	if rule.OnExitCodes != nil {
		return rule.Action, fmt.Sprintf("Container main for pod %s failed with exit code %d matching FailJob rule at index %d", pod.Name, *pod.ExitCode, i)
	}
	return rule.Action, fmt.Sprintf("Pod %s has condition %s matching FailJob rule at index %d", pod.Name, v1alpha1.PodConditionDisruptionTarget, i)
}

func deadline(seconds int64) time.Duration {
	// activeDeadlineSeconds is validated to at most MaxActiveDeadlineSeconds,
	// so this cannot overflow.
	return time.Duration(seconds) * time.Second
}

// pastDeadline is pastActiveDeadline: elapsed ≥ activeDeadlineSeconds.
func pastDeadline(d *int64, start, now time.Time) bool {
	return d != nil && !now.Before(start.Add(deadline(*d)))
}

func condition(typ, reason, msg string, now time.Time) *backend.Condition {
	return &backend.Condition{Type: typ, Status: "True", Reason: reason, Message: msg, LastTransitionTime: now}
}

func findCondition(cs []backend.Condition, typ string) *backend.Condition {
	for i := range cs {
		if cs[i].Type == typ && cs[i].Status == "True" {
			return &cs[i]
		}
	}
	return nil
}

func hasCondition(cs []backend.Condition, typ string) bool { return findCondition(cs, typ) != nil }
