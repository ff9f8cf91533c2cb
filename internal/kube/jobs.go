package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// GetJob reads the Job and its pods. The phase comes from the Job's
// conditions (Complete/Failed), never from status.failed alone; attempts
// are the pods, oldest first.
func (b *Backend) GetJob(ctx context.Context, name string) (*backend.Job, error) {
	ns := b.nsFor(KindJob, name)
	job, err := b.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, b.explain(err, "get", "jobs.batch", ns, name)
	}
	if job.Labels[LabelManagedBy] != ManagedBy {
		return nil, fmt.Errorf("job %s in namespace %q is not managed by petrel (no label %s=%s): %w", name, ns, LabelManagedBy, ManagedBy, backend.ErrNotFound)
	}
	pods, err := b.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindJob, name)})
	if err != nil {
		return nil, b.explain(err, "list", "pods", ns, "")
	}
	j := jobStatus(job, pods.Items)
	return &j, nil
}

// listPageSize is the page size of ListJobs' job list.
const listPageSize = 500

// ListJobs lists every petrel Job in the namespace with its pods, oldest
// job first. Pods are listed while the Jobs are read page by page; each
// page is cut down at once to the fields status needs, so 10,000 Jobs never
// sit decoded in memory together (a fresh `petrel get` process otherwise
// spends much of its time faulting in heap).
func (b *Backend) ListJobs(ctx context.Context) ([]backend.Job, error) {
	ns := b.ns
	sel := LabelManagedBy + "=" + ManagedBy + "," + LabelKind + "=" + KindJob
	var pods *corev1.PodList
	var podErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pods, podErr = b.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	}()
	var jobs []*batchv1.Job
	opts := metav1.ListOptions{LabelSelector: sel, Limit: listPageSize}
	for {
		l, err := b.cs.BatchV1().Jobs(ns).List(ctx, opts)
		if err != nil {
			wg.Wait()
			return nil, b.explain(err, "list", "jobs.batch", ns, "")
		}
		for i := range l.Items {
			jobs = append(jobs, trimJob(&l.Items[i]))
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	wg.Wait()
	if podErr != nil {
		return nil, b.explain(podErr, "list", "pods", ns, "")
	}
	podsOf := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		w := p.Labels[LabelWorkload]
		podsOf[w] = append(podsOf[w], p)
	}
	out := make([]backend.Job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, jobStatus(j, podsOf[j.Name]))
	}
	sortJobs(out)
	return out, nil
}

// sortJobs orders jobs oldest first, then by name.
func sortJobs(out []backend.Job) {
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreationTime.Equal(out[j].CreationTime) {
			return out[i].CreationTime.Before(out[j].CreationTime)
		}
		return out[i].Name < out[j].Name
	})
}

// trimJob copies what jobStatus reads from a Job, so the decoded page
// (pod template, managed fields) can be freed.
func trimJob(j *batchv1.Job) *batchv1.Job {
	t := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: j.Name, Namespace: j.Namespace, Labels: j.Labels, CreationTimestamp: j.CreationTimestamp},
		Spec:       batchv1.JobSpec{BackoffLimit: j.Spec.BackoffLimit, Suspend: j.Spec.Suspend},
		Status:     j.Status,
	}
	if s, ok := j.Annotations[AnnotationSpec]; ok {
		t.Annotations = map[string]string{AnnotationSpec: strings.Clone(s)}
	} else if len(j.Spec.Template.Spec.Containers) > 0 {
		c := j.Spec.Template.Spec.Containers[0]
		t.Spec.Template.Spec.Containers = []corev1.Container{{Image: c.Image, Command: c.Command, Args: c.Args}}
	}
	return t
}

// specOf returns the petrel spec recorded on an object (secret values
// masked), or ok false when the annotation is missing or unreadable.
func specOf(obj metav1.Object, into any) bool {
	s, ok := obj.GetAnnotations()[AnnotationSpec]
	return ok && json.Unmarshal([]byte(s), into) == nil
}

// sortPods orders pods by creation time (then name): attempt N is the Nth.
func sortPods(pods []corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i].CreationTimestamp, pods[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return pods[i].Name < pods[j].Name
	})
}

// jobStatus maps a Job and its pods to petrel's status vocabulary.
func jobStatus(job *batchv1.Job, pods []corev1.Pod) backend.Job {
	j := backend.Job{
		Name:         job.Name,
		Namespace:    job.Namespace,
		Labels:       job.Labels,
		CreationTime: job.CreationTimestamp.Time,
		Active:       job.Status.Active,
		Succeeded:    job.Status.Succeeded,
		Failed:       job.Status.Failed,
		StartTime:    timePtr(job.Status.StartTime),
	}
	if !specOf(job, &j.Spec) {
		// Not made by petrel's renderer, or listed for the table only
		// (ListJobsForTable): what the Job itself says.
		j.Spec.BackoffLimit = job.Spec.BackoffLimit
		if len(job.Spec.Template.Spec.Containers) > 0 {
			c := job.Spec.Template.Spec.Containers[0]
			j.Spec.PodTemplate = v1alpha1.PodTemplate{Image: c.Image, Command: c.Command, Args: c.Args}
		}
	}
	j.CompletionTime = timePtr(job.Status.CompletionTime)
	for _, c := range job.Status.Conditions {
		j.Conditions = append(j.Conditions, backend.Condition{
			Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message, LastTransitionTime: c.LastTransitionTime.Time,
		})
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			j.Phase = backend.JobComplete
		case batchv1.JobFailureTarget, batchv1.JobSuccessCriteriaMet:
			if j.Phase == "" {
				j.Phase = backend.JobRunning // terminating its pods before Failed/Complete
			}
		case batchv1.JobFailed:
			j.Phase = backend.JobFailed
			if j.CompletionTime == nil {
				t := c.LastTransitionTime.Time
				j.CompletionTime = &t
			}
		}
	}
	sortPods(pods)
	running := false
	for i := range pods {
		a := attemptOf(i, &pods[i], j.Spec.PodFailurePolicy)
		if a.Phase == backend.PodRunning {
			running = true
		}
		j.Attempts = append(j.Attempts, a)
	}
	if j.Phase == "" {
		switch {
		case running:
			j.Phase = backend.JobRunning
		case job.Spec.Suspend != nil && *job.Spec.Suspend:
			// kubectl shows Suspended; a Kueue-managed Job starts so.
			j.Phase = backend.JobSuspended
			j.Waiting = waitingReason(job, j.Attempts, pods)
		default:
			j.Phase = backend.JobPending
			j.Waiting = waitingReason(job, j.Attempts, pods)
		}
	}
	return j
}

// attemptOf describes one pod as an attempt, from its main container's
// state: exit code, reason and times when terminated, the waiting reason
// (ImagePullBackOff …) or the scheduler's reason when it is not running.
func attemptOf(i int, p *corev1.Pod, pfp *v1alpha1.PodFailurePolicy) backend.Attempt {
	a := backend.Attempt{Index: i, Name: p.Name, Phase: backend.PodPhase(p.Status.Phase), Node: p.Spec.NodeName, StartTime: timePtr(p.Status.StartTime)}
	if p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		a.Reason = "Terminating"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != ContainerName {
			continue
		}
		switch st := cs.State; {
		case st.Terminated != nil:
			code := st.Terminated.ExitCode
			a.ExitCode = &code
			a.Reason, a.Message = st.Terminated.Reason, st.Terminated.Message
			if !st.Terminated.StartedAt.IsZero() {
				t := st.Terminated.StartedAt.Time
				a.StartTime = &t
			}
			if !st.Terminated.FinishedAt.IsZero() {
				t := st.Terminated.FinishedAt.Time
				a.EndTime = &t
			}
		case st.Waiting != nil:
			a.Reason, a.Message = st.Waiting.Reason, st.Waiting.Message
		case st.Running != nil:
			t := st.Running.StartedAt.Time
			a.StartTime = &t
		}
	}
	if a.Reason == "" && p.Status.Phase == corev1.PodFailed {
		a.Reason, a.Message = p.Status.Reason, p.Status.Message // e.g. DeadlineExceeded, Evicted
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && a.Reason == "" {
			a.Reason, a.Message = c.Reason, c.Message // Unschedulable: "0/3 nodes are available: …"
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		a.Ignored = ignoredByPolicy(p, a.ExitCode, pfp)
	}
	return a
}

// ignoredByPolicy reports whether the first podFailurePolicy rule that
// matches the failed pod p is Ignore, as the Job controller decides
// (matchPodFailurePolicy in pkg/controller/job/pod_failure_policy.go):
// rules in order, onExitCodes against the main container's exit code,
// onPodConditions against the pod's conditions (status default True). A
// pod with a DisruptionTarget condition and no matching rule is ignored
// too when the job is distributed: the rendered policy adds that rule
// (distribute in render.go), with pfp nil or not.
func ignoredByPolicy(p *corev1.Pod, exitCode *int32, pfp *v1alpha1.PodFailurePolicy) bool {
	if i := pfp.Match(exitCode, func(typ, status string) bool {
		return hasPodCondition(p, corev1.PodConditionType(typ), corev1.ConditionStatus(status))
	}); i >= 0 {
		return pfp.Rules[i].Action == v1alpha1.PodFailurePolicyActionIgnore
	}
	return p.Annotations[batchv1.JobCompletionIndexAnnotation] != "" &&
		hasPodCondition(p, corev1.DisruptionTarget, corev1.ConditionTrue)
}

// hasPodCondition reports whether p has condition t with status st.
func hasPodCondition(p *corev1.Pod, t corev1.PodConditionType, st corev1.ConditionStatus) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t && c.Status == st {
			return true
		}
	}
	return false
}

// waitingReason says why no attempt of an unfinished job runs. Attempts
// are numbered from 1 here, as in the local engine's waiting lines.
func waitingReason(job *batchv1.Job, attempts []backend.Attempt, pods []corev1.Pod) *backend.Waiting {
	w := func(r backend.WaitingReason, msg string) *backend.Waiting {
		return &backend.Waiting{Reason: r, Message: msg}
	}
	for i := len(attempts) - 1; i >= 0; i-- {
		a := attempts[i]
		if a.Phase != backend.PodPending {
			continue
		}
		switch {
		case a.Reason == corev1.PodReasonUnschedulable:
			return w(backend.WaitingUnschedulable, "unschedulable: "+a.Message)
		case a.Reason != "" && a.Message != "":
			return w(backend.WaitingContainer, a.Reason+": "+a.Message)
		case a.Reason != "":
			return w(backend.WaitingContainer, a.Reason)
		case pods[i].Spec.NodeName == "":
			return w(backend.WaitingPending, "waiting for the scheduler to place attempt "+fmt.Sprint(i))
		default:
			return w(backend.WaitingPending, "attempt "+fmt.Sprint(i)+" is starting on node "+pods[i].Spec.NodeName)
		}
	}
	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		return w(backend.WaitingPending, "suspended")
	}
	if n := len(attempts); n > 0 {
		return w(backend.WaitingBackOff, fmt.Sprintf("back-off before attempt %d (the Job controller delays retries after failures)", n)) // 0-based, as attempt indices
	}
	return w(backend.WaitingPending, "waiting for the Job controller to create the first pod")
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.Time
	return &v
}
