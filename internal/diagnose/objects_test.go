package diagnose

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/internal/backend"

	"strings"
	"testing"
)

// stripMessages blanks the free text Kubernetes components write (event
// messages, condition messages, waiting and termination messages, a pod's
// status.message), keeping every object, reason and count: what is left is
// what the objects themselves say. The wording of those messages changes
// between Kubernetes versions; a cause derived from the objects does not.
func stripMessages(s *State) {
	for i := range s.Events {
		s.Events[i].Message = ""
	}
	for i := range s.Pods {
		p := &s.Pods[i]
		p.Status.Message = ""
		for j := range p.Status.Conditions {
			p.Status.Conditions[j].Message = ""
		}
		for _, cs := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
			for j := range cs {
				if w := cs[j].State.Waiting; w != nil {
					w.Message = ""
				}
				if t := cs[j].State.Terminated; t != nil {
					t.Message = ""
				}
				if t := cs[j].LastTerminationState.Terminated; t != nil {
					t.Message = ""
				}
			}
		}
	}
	for i := range s.Jobs {
		for j := range s.Jobs[i].Status.Conditions {
			s.Jobs[i].Status.Conditions[j].Message = ""
		}
	}
	for i := range s.Deployments {
		for j := range s.Deployments[i].Status.Conditions {
			s.Deployments[i].Status.Conditions[j].Message = ""
		}
	}
	for i := range s.HorizontalPodAutoscalers {
		for j := range s.HorizontalPodAutoscalers[i].Status.Conditions {
			s.HorizontalPodAutoscalers[i].Status.Conditions[j].Message = ""
		}
	}
}

// onlyInMessages are the cases whose deciding fact is in no object of the
// dump, only in a component's text; the reason says which.
var onlyInMessages = map[string]string{
	"C05.yaml":         "the tainted nodes are cluster-autoscaler node-group templates, not Node objects: the NotTriggerScaleUp message is the only place their taint appears",
	"C05-snippet.yaml": "a pasted event with no nodes: the taint appears only in the scheduler's message",
	"C10.yaml":         "the scaling history (New size: 7, 2, 7 …) exists only in the HPA's SuccessfulRescale event messages; the HPA object keeps only the current size",
}

// TestCasesFromObjectsAlone replays every recorded case with the
// components' messages stripped and expects the same finding on the same
// object: the cause comes from the objects and their relations, the
// message only corroborates it.
func TestCasesFromObjectsAlone(t *testing.T) {
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.file, ".yaml")+"/"+tc.rule, func(t *testing.T) {
			if why, ok := onlyInMessages[tc.file]; ok {
				t.Skip(why)
			}
			s := loadCase(t, tc.file)
			stripMessages(s)
			got := Analyze(s, tc.target)
			for _, f := range got {
				if f.RuleID == tc.rule && f.Object == tc.object {
					if f.Permanent != tc.permanent {
						t.Errorf("permanent = %v, want %v", f.Permanent, tc.permanent)
					}
					return
				}
			}
			t.Errorf("without messages, no %s on %s; got:\n%s", tc.rule, tc.object, dump(got))
		})
	}
}

func objGPUNode(name string, gpus string, taints ...corev1.Taint) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"pool": "gpu"}},
		Spec: corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{"cpu": resource.MustParse("32"), "memory": resource.MustParse("256Gi"),
			"nvidia.com/gpu": resource.MustParse(gpus)}}}
}

func pendingPod(name, gpus string, mutate ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "train", Image: "pytorch",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(gpus)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending}}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

// TestSchedulerFiltersFromObjects: a Pending pod with no scheduler event
// at all (not yet written, expired after an hour, or from a scheduler
// that words it differently) gets the same finding from the nodes.
func TestSchedulerFiltersFromObjects(t *testing.T) {
	gpuTaint := corev1.Taint{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}
	busy := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ml"},
		Spec: corev1.PodSpec{NodeName: "gpu-1", Containers: []corev1.Container{{Name: "x",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	tolerate := func(p *corev1.Pod) {
		p.Spec.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}
	tests := []struct {
		name      string
		state     State
		rule      string
		permanent bool
	}{
		{"taint no toleration", State{Nodes: []corev1.Node{objGPUNode("gpu-1", "8", gpuTaint)}, Pods: []corev1.Pod{pendingPod("p", "1")}}, "untolerated-taint", true},
		{"node selector matches no node", State{Nodes: []corev1.Node{objGPUNode("gpu-1", "8")},
			Pods: []corev1.Pod{pendingPod("p", "1", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"pool": "a100"} })}}, "node-affinity-mismatch", true},
		{"more GPUs than any node", State{Nodes: []corev1.Node{objGPUNode("gpu-1", "1")}, Pods: []corev1.Pod{pendingPod("p", "2")}}, "gpu-request-exceeds-nodes", true},
		{"GPUs in use", State{Nodes: []corev1.Node{objGPUNode("gpu-1", "1", gpuTaint)}, Pods: []corev1.Pod{pendingPod("p", "1", tolerate), busy}}, "gpu-busy", false},
		{"no node advertises GPUs", State{Nodes: []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "cpu-1"},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{"cpu": resource.MustParse("8")}}}}, Pods: []corev1.Pod{pendingPod("p", "1")}}, "gpu-not-advertised", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Analyze(&tc.state, ref("pod", "p"))
			if len(got) == 0 || got[0].RuleID != tc.rule || got[0].Permanent != tc.permanent {
				t.Errorf("want %s (permanent %v) first; got:\n%s", tc.rule, tc.permanent, dump(got))
			}
		})
	}
}

// TestStorageFromObjects: a ReadWriteMany claim on a block-storage class
// can never bind, whatever the provisioner's event says.
func TestStorageFromObjects(t *testing.T) {
	class := "gp3"
	st := State{
		StorageClasses: []storagev1.StorageClass{{ObjectMeta: metav1.ObjectMeta{Name: "gp3"}, Provisioner: "ebs.csi.aws.com"}},
		PersistentVolumeClaims: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "shared-data", Namespace: "ml"},
			Spec:   corev1.PersistentVolumeClaimSpec{StorageClassName: &class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}},
			Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}},
	}
	got := Analyze(&st, backend.Ref{})
	if len(got) == 0 || got[0].RuleID != "pvc-unbound" || !got[0].Permanent || !strings.Contains(findingText(got[0]), "ebs.csi.aws.com") {
		t.Errorf("want permanent pvc-unbound naming the block provisioner; got:\n%s", dump(got))
	}
}

// TestCorpusFromObjectsAlone does the same for the public-report corpus.
func TestCorpusFromObjectsAlone(t *testing.T) {
	onlyInMessages := map[string]string{
		"N07.yaml": "the dump holds no StorageClass list, so that none exists is stated only by the binder's FailedBinding message",
		"N20.yaml": "the registry's refusal (401, authentication required) exists only in the kubelet's pull error; the objects say only ImagePullBackOff",
		"N23.yaml": "the registry's 401 exists only in the kubelet's waiting message; the objects say only ErrImagePull",
	}
	for _, c := range corpus {
		t.Run(strings.TrimSuffix(c.file, ".yaml")+"/"+c.rule, func(t *testing.T) {
			if why, ok := onlyInMessages[c.file]; ok {
				t.Skip(why)
			}
			s := loadCorpus(t, c.file)
			stripMessages(s)
			for _, f := range Analyze(s, c.target) {
				if f.RuleID == c.rule && f.Object == c.object && f.Permanent == c.permanent {
					return
				}
			}
			t.Errorf("without messages, no %s on %s", c.rule, c.object)
		})
	}
}
