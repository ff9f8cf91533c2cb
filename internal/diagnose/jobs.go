package diagnose

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "jobs",
		Description: "Reads a batch/v1 Job's conditions (never status.failed alone: a Job that succeeded on a retry " +
			"is fine): failed by backoffLimit, by activeDeadlineSeconds or by podFailurePolicy; pods restarting " +
			"in place under restartPolicy OnFailure while the failed count stays 0.",
		Rules: []Rule{
			{"job-backoff-limit-exceeded", "The Job failed: its pods failed backoffLimit+1 times."},
			{"job-deadline-exceeded", "The Job failed: it ran longer than activeDeadlineSeconds."},
			{"job-failed", "The Job failed for another reason (podFailurePolicy …), quoted from its condition."},
			{"job-restarting-in-place", "restartPolicy OnFailure restarts the same pod, so backoffLimit barely applies."},
		},
		Run: runJobs,
	})
}

// jobFailure returns the Job's Failed (or FailureTarget) condition that is
// True, or nil.
func jobFailure(j *batchv1.Job) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		if (c.Type == batchv1.JobFailed || c.Type == batchv1.JobFailureTarget) && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobSuccessCriteriaMet) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func (c *Context) jobPods(j *batchv1.Job) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range c.Pods() {
		if p.Labels["job-name"] == j.Name || p.Labels["batch.kubernetes.io/job-name"] == j.Name {
			out = append(out, p)
			continue
		}
		for _, o := range p.OwnerReferences {
			if o.Kind == "Job" && o.Name == j.Name {
				out = append(out, p)
			}
		}
	}
	return out
}

// jobFailingWhy says what kept a Job's pods from making progress, from the
// pods themselves: containers that crashed (any cause the crash walk
// found) or pods the scheduler could not place; "" when they ran cleanly.
func jobFailingWhy(c *Context, pods []*corev1.Pod) string {
	mine := map[*corev1.Pod]bool{}
	pending := 0
	for _, p := range pods {
		mine[p] = true
		if pendingUnscheduled(p) {
			pending++
		}
	}
	crashed := 0
	for _, k := range c.crashes() {
		if mine[k.Pod] && k.Cause != causeNone {
			crashed++
		}
	}
	switch {
	case crashed > 0:
		return fmt.Sprintf("its containers kept failing (%d crashed)", crashed)
	case pending > 0:
		return fmt.Sprintf("%d of its pods never scheduled", pending)
	}
	return ""
}

func runJobs(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, j := range c.Jobs() {
		if jobComplete(j) {
			continue
		}
		obj := "Job/" + j.Name
		pods := c.jobPods(j)
		restartPolicy := j.Spec.Template.Spec.RestartPolicy
		backoff := "6 (default)"
		if j.Spec.BackoffLimit != nil {
			backoff = fmt.Sprint(*j.Spec.BackoffLimit)
		}
		if cond := jobFailure(j); cond != nil {
			ev := []string{
				fmt.Sprintf("status.conditions[%s]: True, reason %s, message %q", cond.Type, cond.Reason, cond.Message),
				fmt.Sprintf("status.failed %d, spec.backoffLimit %s", j.Status.Failed, backoff),
			}
			logsGone := len(pods) == 0
			if logsGone {
				ev = append(ev, fmt.Sprintf("no pod of Job %s remains (spec.template.spec.restartPolicy %s)", j.Name, orNone(string(restartPolicy))))
				for _, e := range c.Events("Job", j.Namespace, j.Name) {
					if e.Reason == "SuccessfulDelete" {
						ev = append(ev, eventEvidence(e))
					}
				}
			}
			f := backend.Finding{Severity: backend.SeverityError, Object: obj, Permanent: true, Evidence: ev}
			switch cond.Reason {
			case batchv1.JobReasonBackoffLimitExceeded:
				f.RuleID = "job-backoff-limit-exceeded"
				f.Message = fmt.Sprintf("Job %s failed: its pods failed more often than backoffLimit %s allows.", j.Name, backoff)
				if restartPolicy == corev1.RestartPolicyOnFailure {
					f.Message = fmt.Sprintf("Job %s failed with BackoffLimitExceeded (backoffLimit %s, counted from container restarts).", j.Name, strings.TrimSuffix(backoff, " (default)"))
				}
				f.Fix = "Fix why the pods fail (see the findings about its pods) and run the Job again."
				if logsGone {
					f.Fix = "Run it again and read the pod's logs while it fails (kubectl logs -f), then fix that."
				}
			case batchv1.JobReasonDeadlineExceeded:
				deadlineExceeded(&f, j.Name, j.Spec.ActiveDeadlineSeconds, "its pods were", jobFailingWhy(c, pods))
			default:
				f.RuleID = "job-failed"
				f.Message = fmt.Sprintf("Job %s failed (%s): %s", j.Name, cond.Reason, cond.Message)
				f.Fix = "Read the failed pods' exit codes and logs; a podFailurePolicy FailJob rule ends the Job at the first matching exit code by design."
			}
			if logsGone && restartPolicy == corev1.RestartPolicyOnFailure {
				f.Message = f.Message[:len(f.Message)-1] + "; its pod was restarted in place (restartPolicy OnFailure) and deleted when the Job failed, so its logs are gone."
				f.Fix = "Use restartPolicy: Never so each failed attempt keeps its pod and logs, and ship logs off the cluster. " + f.Fix
			} else if logsGone {
				f.Message = f.Message[:len(f.Message)-1] + "; none of its pods remain, so their logs cannot be read."
			}
			out = append(out, f)
			continue
		}
		if restartPolicy != corev1.RestartPolicyOnFailure || j.Status.Failed > 0 {
			continue
		}
		var restarts int32
		var ev []string
		for _, p := range pods {
			for _, cs := range p.Status.ContainerStatuses {
				if t, _ := lastTermination(&cs); cs.RestartCount > 0 && t != nil && t.ExitCode != 0 {
					restarts += cs.RestartCount
					ev = append(ev, fmt.Sprintf("pod %s: status.containerStatuses[%s].restartCount %d, last exit code %d", p.Name, cs.Name, cs.RestartCount, t.ExitCode))
				}
			}
		}
		if restarts == 0 {
			continue
		}
		ev = append(ev, fmt.Sprintf("Job %s: status.failed %d, spec.backoffLimit %s, spec.template.spec.restartPolicy OnFailure", j.Name, j.Status.Failed, backoff))
		out = append(out, backend.Finding{
			RuleID: "job-restarting-in-place", Severity: backend.SeverityWarning, Object: obj, Evidence: ev,
			Message: fmt.Sprintf("Job %s's pod fails and is restarted in place (restartPolicy OnFailure): %d restarts while status.failed stays 0, so backoffLimit %s only roughly applies and a broken run keeps burning GPU time.", j.Name, restarts, backoff),
			Fix:     "Use restartPolicy: Never for training Jobs (one pod per attempt, counted against backoffLimit, logs kept) and add activeDeadlineSeconds or a podFailurePolicy as a hard stop.",
		})
	}
	return out
}

// deadlineExceeded fills f for a job that failed with DeadlineExceeded
// (the local engine's and the Job controller's wording); stopped says what
// was stopped ("its pods were", "its attempt was"); failing, when not
// empty, is what made the run fail before the deadline (attempts that
// crashed, pods that never scheduled): then a longer deadline is the
// tempting wrong answer and the fix points at that instead.
func deadlineExceeded(f *backend.Finding, job string, secs *int64, stopped, failing string) {
	f.RuleID = "job-deadline-exceeded"
	dl := "activeDeadlineSeconds"
	if secs != nil {
		dl = fmt.Sprintf("activeDeadlineSeconds %d", *secs)
	}
	f.Message = fmt.Sprintf("Job %s failed: it ran longer than its %s and %s stopped.", job, dl, stopped)
	f.Fix = "Raise spec.activeDeadlineSeconds to cover the whole run including retries, or make the run resume from checkpoints."
	if failing != "" {
		f.Message = fmt.Sprintf("Job %s failed: it hit its %s because %s, so %s stopped.", job, dl, failing, stopped)
		f.Fix = "Fix what the other findings name; a longer deadline would only keep a failing run on its GPUs longer."
	}
}
