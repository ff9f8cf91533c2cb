package diagnose

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

// bigState is a namespace of n pods (a tenth crash-looping, a tenth
// Pending for GPUs), three events per pod and 50 GPU nodes: the size of a
// busy shared training namespace.
func bigState(n int) *State {
	s := &State{}
	for i := 0; i < 50; i++ {
		s.Nodes = append(s.Nodes, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("gpu-%d", i)},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}}})
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("train-%d", i)
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}}}}}}
		switch i % 10 {
		case 0:
			p.Spec.NodeName = "gpu-1"
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "c", RestartCount: 5,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}}
		case 1:
			p.Status = corev1.PodStatus{Phase: corev1.PodPending}
			s.Events = append(s.Events, corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name, Namespace: "ml"},
				Type: "Warning", Reason: "FailedScheduling", Message: "0/50 nodes are available: 50 Insufficient nvidia.com/gpu."})
		default:
			p.Spec.NodeName = fmt.Sprintf("gpu-%d", i%50)
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}
		}
		s.Pods = append(s.Pods, p)
		for _, r := range []string{"Scheduled", "Pulled", "Started"} {
			s.Events = append(s.Events, corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name, Namespace: "ml"}, Type: "Normal", Reason: r})
		}
	}
	return s
}

func BenchmarkAnalyze(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		s := bigState(n)
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			var fs []backend.Finding
			for b.Loop() {
				fs = Analyze(s, backend.Ref{})
			}
			if len(fs) == 0 {
				b.Fatal("no findings")
			}
		})
	}
}
