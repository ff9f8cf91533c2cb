package kube

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Preempt implements backend.Backend: it evicts every pod of the job that
// has not finished (phase neither Succeeded nor Failed, not being deleted)
// through the Eviction API (policy/v1, POST pods/NAME/eviction), as a node
// drain or the scheduler's preemption would. The API server adds the
// DisruptionTarget condition (reason EvictionByEvictionAPI) before it
// deletes the pod, so the rendered podFailurePolicy's Ignore rule applies
// and the Job controller re-creates the pod without counting a failure.
// A PodDisruptionBudget may refuse the eviction (429): that error is
// returned. It returns an error when the job has no such pod.
func (b *Backend) Preempt(ctx context.Context, name string) error {
	ns := b.nsFor(KindJob, name)
	if _, err := b.GetJob(ctx, name); err != nil { // not found or not petrel's: say so
		return err
	}
	pods, err := b.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindJob, name)})
	if err != nil {
		return b.explain(err, "list", "pods", ns, "")
	}
	var errs []error
	n := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		n++
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns}}
		if err := b.cs.PolicyV1().Evictions(ns).Evict(ctx, ev); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("evict pod %s: %w", p.Name, b.explain(err, "create", "pods/eviction", ns, p.Name)))
		}
	}
	if n == 0 {
		return fmt.Errorf("job %q has no running pod to preempt in namespace %q", name, ns)
	}
	return errors.Join(errs...)
}
