package kube

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// TestIgnoredByPolicyFollowsTheFirstMatchingRule: as the Job controller,
// the first matching rule decides; a DisruptionTarget pod of an Indexed
// (distributed) job is ignored by the rendered rule even without a spec
// policy, and a plain job's disrupted pod is not.
func TestIgnoredByPolicyFollowsTheFirstMatchingRule(t *testing.T) {
	disrupted := func(indexed bool) *corev1.Pod {
		p := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}}
		if indexed {
			p.ObjectMeta = metav1.ObjectMeta{Annotations: map[string]string{batchv1.JobCompletionIndexAnnotation: "1"}}
		}
		return p
	}
	code := int32(143)
	failOnDisruption := &v1alpha1.PodFailurePolicy{Rules: []v1alpha1.PodFailurePolicyRule{{
		Action: v1alpha1.PodFailurePolicyActionFailJob, OnPodConditions: []v1alpha1.PodFailurePolicyOnPodConditionsPattern{{Type: v1alpha1.PodConditionDisruptionTarget}},
	}}}
	for _, tt := range []struct {
		name string
		pod  *corev1.Pod
		pfp  *v1alpha1.PodFailurePolicy
		want bool
	}{
		{"distributed, no spec policy", disrupted(true), nil, true},
		{"plain job, no spec policy", disrupted(false), nil, false},
		{"spec FailJob rule on DisruptionTarget wins", disrupted(true), failOnDisruption, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ignoredByPolicy(tt.pod, &code, tt.pfp); got != tt.want {
				t.Errorf("ignored = %v, want %v", got, tt.want)
			}
		})
	}
}
