package livetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/diagnose"
	"github.com/petrel-dev/petrel/test/cluster"
)

// sameAsDump checks that the live finding is the one the public-report
// corpus dump gives (internal/diagnose/testdata/corpus): same rule, same
// permanence, so the dump and the recreated cluster agree.
func sameAsDump(t *testing.T, live backend.Finding, file string, target backend.Ref) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "corpus", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _, err := diagnose.Load(f, file)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diagnose.Analyze(s, target) {
		if d.RuleID == live.RuleID {
			if d.Permanent != live.Permanent {
				t.Errorf("%s: permanent %v live, %v from the dump %s", live.RuleID, live.Permanent, d.Permanent, file)
			}
			return
		}
	}
	t.Errorf("the dump %s does not give the live finding %s", file, live.RuleID)
}

func cpuNode(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	must(t, err)
	for _, n := range nodes.Items {
		if _, gpu := n.Status.Allocatable[cluster.GPUResource]; !gpu {
			return n.Name
		}
	}
	t.Fatal("no CPU node")
	return ""
}

// TestLiveCorpusScheduling recreates corpus cases N13 (GPUs summed over a
// pod's containers), N16 (required pod affinity to a pod on the CPU node)
// and N17 (a CPU request above any node) on the test cluster.
func TestLiveCorpusScheduling(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ctx := context.Background()

	t.Run("N13 two one-GPU containers on one-GPU nodes", func(t *testing.T) {
		ns := c.Namespace(t, "corpus-n13")
		p := pod("gpu-pod", nil, true, container(1))
		second := container(1)
		second.Name = "digits"
		p.Spec.Containers = append(p.Spec.Containers, second)
		_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		must(t, err)
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "pod", Name: "gpu-pod"}, "gpu-request-exceeds-nodes")
		contains(t, f, "2 nvidia.com/gpu", "largest node has 1")
		sameAsDump(t, f, "N13.yaml", backend.Ref{Kind: "pod", Name: "gpu-pod"})
	})

	t.Run("N16 required pod affinity to a pod on the CPU node", func(t *testing.T) {
		ns := c.Namespace(t, "corpus-n16")
		anchor := pod("devpod-default-de-a-d7206", nil, false, container(0))
		anchor.Labels = map[string]string{"devpod.sh/workspace": "de-a"}
		anchor.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": cpuNode(t, cs)}
		_, err := cs.CoreV1().Pods(ns).Create(ctx, anchor, metav1.CreateOptions{})
		must(t, err)
		must(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, anchor.Name, metav1.GetOptions{})
			return err == nil && p.Spec.NodeName != "", nil
		}))
		gpu := pod("devpod-de-a-gpu", nil, true, container(1))
		gpu.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"devpod.sh/workspace": "de-a"}}, TopologyKey: "kubernetes.io/hostname",
		}}}}
		_, err = cs.CoreV1().Pods(ns).Create(ctx, gpu, metav1.CreateOptions{})
		must(t, err)
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "pod", Name: "devpod-de-a-gpu"}, "pod-affinity-mismatch")
		contains(t, f, "devpod-default-de-a-d7206")
		sameAsDump(t, f, "N16.yaml", backend.Ref{Kind: "pod", Name: "devpod-de-a-gpu"})
	})

	t.Run("N17 CPU request above any node", func(t *testing.T) {
		ns := c.Namespace(t, "corpus-n17")
		p := pod("egl-desktop-0", nil, true, container(1, func(c *corev1.Container) {
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("33")}
			c.Resources.Limits[corev1.ResourceCPU] = resource.MustParse("33")
		}))
		_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		must(t, err)
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "pod", Name: "egl-desktop-0"}, "resource-request-exceeds-nodes")
		contains(t, f, "33 cpu")
		sameAsDump(t, f, "N17.yaml", backend.Ref{Kind: "pod", Name: "egl-desktop-0"})
	})
}

// TestLiveCorpusStorageAndAutoscaling recreates N07 (a claim without a
// class on a cluster without a default class), N08 (ReadWriteMany on a
// block-storage class), N30 (a claim naming a class that does not exist)
// and N19 (an HPA on a cluster without
// metrics-server, as the test cluster is).
func TestLiveCorpusStorageAndAutoscaling(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ctx := context.Background()
	claimPod := func(name, claim string) *corev1.Pod {
		p := pod(name, nil, false, container(0))
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
		return p
	}
	claim := func(name string, class *string, mode corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: class, AccessModes: []corev1.PersistentVolumeAccessMode{mode},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	}

	t.Run("N07 claim without a class and no default class", func(t *testing.T) {
		ns := c.Namespace(t, "corpus-n07")
		_, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim("minio-pv-claim", nil, corev1.ReadWriteOnce), metav1.CreateOptions{})
		must(t, err)
		_, err = cs.CoreV1().Pods(ns).Create(ctx, claimPod("minio", "minio-pv-claim"), metav1.CreateOptions{})
		must(t, err)
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "pvc", Name: "minio-pv-claim"}, "pvc-unbound")
		if !f.Permanent {
			// The binder's FailedBinding event arrives after a sync; until
			// then the claim is only "not bound yet".
			f, _ = waitPermanent(t, cs, ns, backend.Ref{Kind: "pvc", Name: "minio-pv-claim"}, "pvc-unbound")
		}
		sameAsDump(t, f, "N07.yaml", backend.Ref{})
	})

	t.Run("N08 ReadWriteMany on a block-storage class", func(t *testing.T) {
		ns := c.Namespace(t, "corpus-n08")
		class := "pd-standard-" + ns
		_, err := cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class},
			Provisioner: "kubernetes.io/gce-pd"}, metav1.CreateOptions{})
		must(t, err)
		t.Cleanup(func() { cs.StorageV1().StorageClasses().Delete(context.Background(), class, metav1.DeleteOptions{}) })
		_, err = cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim("newpvc", &class, corev1.ReadWriteMany), metav1.CreateOptions{})
		must(t, err)
		_, err = cs.CoreV1().Pods(ns).Create(ctx, claimPod("volumeop", "newpvc"), metav1.CreateOptions{})
		must(t, err)
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "pvc", Name: "newpvc"}, "pvc-unbound")
		contains(t, f, "ReadWriteMany", "kubernetes.io/gce-pd")
		if !f.Permanent {
			t.Errorf("RWX on block storage must be permanent")
		}
		sameAsDump(t, f, "N08.yaml", backend.Ref{})
	})

	t.Run("N30 claim naming a class that does not exist", func(t *testing.T) {
		ns := c.Namespace(t, "corpus-n30")
		class := "katib"
		_, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim("katib-mysql", &class, corev1.ReadWriteOnce), metav1.CreateOptions{})
		must(t, err)
		_, err = cs.CoreV1().Pods(ns).Create(ctx, claimPod("katib-mysql", "katib-mysql"), metav1.CreateOptions{})
		must(t, err)
		// The class list decides, not the binder's event: the finding is
		// permanent from the first look.
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "pvc", Name: "katib-mysql"}, "pvc-unbound")
		contains(t, f, "katib does not exist")
		if !f.Permanent {
			t.Errorf("a claim whose class does not exist must be permanent")
		}
		sameAsDump(t, f, "N30.yaml", backend.Ref{Kind: "pvc", Name: "katib-mysql"})
	})

	t.Run("N19 HPA without metrics-server", func(t *testing.T) {
		ns := c.Namespace(t, "corpus-n19")
		labels := map[string]string{"run": "php-apache-test"}
		one := int32(1)
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "php-apache-test"},
			Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{
					container(0, func(c *corev1.Container) {
						c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}
					})}}}}}, metav1.CreateOptions{})
		must(t, err)
		fifty := int32(50)
		_, err = cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "php-apache-test"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "php-apache-test"},
				MinReplicas:    &one, MaxReplicas: 10,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &fifty}}}},
			}}, metav1.CreateOptions{})
		must(t, err)
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "hpa", Name: "php-apache-test"}, "hpa-metrics-unavailable")
		contains(t, f, "metrics-server")
		sameAsDump(t, f, "N19.yaml", backend.Ref{Kind: "hpa", Name: "php-apache-test"})
	})
}

// waitPermanent waits until rule's finding for ref is permanent.
func waitPermanent(t *testing.T, cs kubernetes.Interface, ns string, ref backend.Ref, rule string) (backend.Finding, []backend.Finding) {
	t.Helper()
	var got backend.Finding
	var all []backend.Finding
	err := wait.PollUntilContextTimeout(context.Background(), 300*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		fs, err := diagnose.Diagnose(ctx, cs, ns, ref)
		if err != nil {
			return false, nil
		}
		all = fs
		for _, f := range fs {
			if f.RuleID == rule && f.Permanent {
				got = f
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no permanent %s for %s/%s; last findings %+v", rule, ref.Kind, ref.Name, all)
	}
	return got, all
}

// TestLiveCorpusWithoutGPUNodes recreates N14 (no node advertises
// nvidia.com/gpu) and N15 (the device plugin's DaemonSet wants a label no
// node has) on a cluster whose nodes have no GPU, and N18 (a router
// OOM-killed at its memory limit, crash-looping) on the shared cluster.
func TestLiveCorpusWithoutGPUNodes(t *testing.T) {
	ctx := context.Background()
	t.Run("N14 no node advertises the GPU", func(t *testing.T) {
		c := cluster.Start(t, cluster.Options{Nodes: 1})
		cs := c.Client(t)
		ns := c.Namespace(t, "corpus-n14")
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod("gpu-pod", nil, false, container(1)), metav1.CreateOptions{})
		must(t, err)
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "pod", Name: "gpu-pod"}, "gpu-not-advertised")
		contains(t, f, "no node advertises nvidia.com/gpu")
		sameAsDump(t, f, "N14.yaml", backend.Ref{Kind: "pod", Name: "gpu-pod"})
	})
	t.Run("N15 device plugin DaemonSet wants a label no node has", func(t *testing.T) {
		c := cluster.Start(t, cluster.Options{Nodes: 1})
		cs := c.Client(t)
		ns := c.Namespace(t, "corpus-n15")
		labels := map[string]string{"app.kubernetes.io/name": "nvidia-device-plugin"}
		_, err := cs.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "nvdp-nvidia-device-plugin"},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
						NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
							Key: "nvidia.com/gpu.present", Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}}}}}}}},
					Tolerations: []corev1.Toleration{gpuToleration},
					Containers:  []corev1.Container{{Name: "nvidia-device-plugin-ctr", Image: "nvcr.io/nvidia/k8s-device-plugin:v0.15.0-rc.2"}},
				}}},
		}, metav1.CreateOptions{})
		must(t, err)
		must(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, "nvdp-nvidia-device-plugin", metav1.GetOptions{})
			return err == nil && d.Status.ObservedGeneration >= d.Generation, nil
		}))
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "daemonset", Name: "nvdp-nvidia-device-plugin"}, "daemonset-not-scheduled")
		contains(t, f, "nvidia.com/gpu.present")
		sameAsDump(t, f, "N15.yaml", backend.Ref{})
	})
	t.Run("N18 router OOM-killed at its memory limit", func(t *testing.T) {
		c := cluster.Start(t, opts)
		cs := c.Client(t)
		ns := c.Namespace(t, "corpus-n18")
		labels := map[string]string{"app": "router"}
		one := int32(1)
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "vllm-deployment-router"},
			Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{cluster.AnnotationSimReason: "OOMKilled"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{container(0, func(c *corev1.Container) {
						c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("500Mi")}
					})}}}}}, metav1.CreateOptions{})
		must(t, err)
		f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "deployment", Name: "vllm-deployment-router"}, "oom-killed")
		contains(t, f, "500Mi")
		// The dump names the pod; the live pod's name is generated.
		sameAsDump(t, f, "N18.yaml", backend.Ref{Kind: "pod", Name: "vllm-deployment-router-6b9f7c8d5-tq4lm"})
	})
}
