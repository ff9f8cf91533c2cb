package livetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/root"
	"github.com/petrel-dev/petrel/internal/diagnose"
	"github.com/petrel-dev/petrel/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// opts is the cluster every test shares: one CPU node and one tainted GPU
// node with a single GPU.
var opts = cluster.Options{Nodes: 1, GPUNodes: 1, GPUsPerNode: 1, GPUTaint: true}

var gpuToleration = corev1.Toleration{Key: string(cluster.GPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

func container(gpus int64, extra ...func(*corev1.Container)) corev1.Container {
	c := corev1.Container{Name: "main", Image: "example/train:1.0"}
	if gpus > 0 {
		c.Resources.Limits = corev1.ResourceList{cluster.GPUResource: *resource.NewQuantity(gpus, resource.DecimalSI)}
	}
	for _, f := range extra {
		f(&c)
	}
	return c
}

func pod(name string, annotations map[string]string, tolerate bool, c corev1.Container) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{c}},
	}
	if tolerate {
		p.Spec.Tolerations = []corev1.Toleration{gpuToleration}
	}
	return p
}

// waitFinding runs the live diagnosis until it gives rule (the cluster gets
// there asynchronously) and returns that finding and all of them.
func waitFinding(t *testing.T, cs kubernetes.Interface, ns string, ref backend.Ref, rule string) (backend.Finding, []backend.Finding) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last []backend.Finding
	var lastErr error
	var got backend.Finding
	err := wait.PollUntilContextCancel(ctx, 300*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		fs, err := diagnose.Diagnose(ctx, cs, ns, ref)
		if err != nil {
			lastErr = err
			return false, nil
		}
		last = fs
		for _, f := range fs {
			if f.RuleID == rule {
				got = f
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		var b strings.Builder
		for _, f := range last {
			b.WriteString("  " + f.RuleID + ": " + f.Message + "\n")
		}
		t.Fatalf("no %s finding for %s/%s: %v (last error %v); last findings:\n%s", rule, ref.Kind, ref.Name, err, lastErr, b.String())
	}
	return got, last
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(t *testing.T, f backend.Finding, words ...string) {
	t.Helper()
	text := f.Message + "\n" + strings.Join(f.Evidence, "\n") + "\n" + f.Fix
	for _, w := range words {
		if !strings.Contains(text, w) {
			t.Errorf("%s finding lacks %q:\n%s", f.RuleID, w, text)
		}
	}
}

func TestLiveGPUScheduling(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ns := c.Namespace(t, "diag-gpu")
	ctx := context.Background()

	// C01's kind: more GPUs than the largest node has.
	_, err := cs.CoreV1().Pods(ns).Create(ctx, pod("two-gpus", nil, true, container(2)), metav1.CreateOptions{})
	must(t, err)
	f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "pod", Name: "two-gpus"}, "gpu-request-exceeds-nodes")
	if !f.Permanent {
		t.Errorf("a request above every node's allocatable must be permanent: %+v", f)
	}
	contains(t, f, "asks for 2 nvidia.com/gpu but the largest node has 1", "largest node")

	// C05's kind: a GPU pod without the GPU taint's toleration.
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("no-toleration", nil, false, container(1)), metav1.CreateOptions{})
	must(t, err)
	f, _ = waitFinding(t, cs, ns, backend.Ref{Kind: "pod", Name: "no-toleration"}, "untolerated-taint")
	contains(t, f, "nvidia.com/gpu=present:NoSchedule", "operator: Exists")

	// The passing kind: the only GPU is held by a running pod.
	holder := pod("holder", map[string]string{cluster.AnnotationSimDuration: "10m"}, true, container(1))
	_, err = cs.CoreV1().Pods(ns).Create(ctx, holder, metav1.CreateOptions{})
	must(t, err)
	must(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "holder", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	}))
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("waiter", nil, true, container(1)), metav1.CreateOptions{})
	must(t, err)
	f, all := waitFinding(t, cs, ns, backend.Ref{Kind: "pod", Name: "waiter"}, "gpu-busy")
	if f.Permanent {
		t.Errorf("busy GPUs are not permanent: %+v", f)
	}
	contains(t, f, "all GPUs are busy right now", "1 of 1 nvidia.com/gpu requested")
	for _, g := range all {
		if g.RuleID == "gpu-request-exceeds-nodes" || g.RuleID == "untolerated-taint" {
			t.Errorf("busy pod also reported as %s", g.RuleID)
		}
	}
	must(t, cs.CoreV1().Pods(ns).Delete(ctx, "holder", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
}

func TestLiveJobOOMKilled(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ns := c.Namespace(t, "diag-oom")
	ctx := context.Background()
	zero := int32(0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "train"},
		Spec: batchv1.JobSpec{
			BackoffLimit: &zero,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{cluster.AnnotationSimReason: "OOMKilled"}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{container(0, func(c *corev1.Container) {
					c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
				})}},
			},
		},
	}
	_, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	must(t, err)
	ref := backend.Ref{Kind: "job", Name: "train"}
	f, all := waitFinding(t, cs, ns, ref, "job-backoff-limit-exceeded")
	contains(t, f, "backoffLimit 0")
	var oom *backend.Finding
	for i := range all {
		if all[i].RuleID == "oom-killed" {
			oom = &all[i]
		}
	}
	if oom == nil {
		t.Fatalf("no oom-killed finding beside the Job's failure: %+v", all)
	}
	contains(t, *oom, "limit of 512Mi", "reason OOMKilled")
	if all[0].RuleID != "oom-killed" {
		t.Errorf("the cause (OOM) should come before the outcome; first is %s", all[0].RuleID)
	}
}

func TestLiveQuotaRejectsPods(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ns := c.Namespace(t, "diag-quota")
	ctx := context.Background()
	_, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "default-quota"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			"limits.cpu": resource.MustParse("8"), "limits.memory": resource.MustParse("16Gi"),
			"requests.cpu": resource.MustParse("8"), "requests.memory": resource.MustParse("16Gi"),
		}},
	}, metav1.CreateOptions{})
	must(t, err)
	// The quota admission plugin only enforces what the quota controller
	// has computed: wait for status.hard.
	must(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "default-quota", metav1.GetOptions{})
		return err == nil && len(q.Status.Hard) > 0, nil
	}))
	zero := int32(0)
	_, err = cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "notebook-task"},
		Spec: batchv1.JobSpec{BackoffLimit: &zero, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Tolerations: []corev1.Toleration{gpuToleration}, Containers: []corev1.Container{container(1)},
		}}},
	}, metav1.CreateOptions{})
	must(t, err)
	f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "job", Name: "notebook-task"}, "quota-requires-resources")
	if !f.Permanent {
		t.Errorf("quota-requires-resources must be permanent")
	}
	// From the quota and the pod template, before or without the
	// admission plugin's "must specify" event.
	contains(t, f, "default-quota", "limits.cpu,limits.memory,requests.cpu,requests.memory", "LimitRange")
}

func TestLiveCrashLoopAndImagePull(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ns := c.Namespace(t, "diag-crash")
	ctx := context.Background()
	one := int32(1)
	deploy := func(name string, ann map[string]string) *appsv1.Deployment {
		labels := map[string]string{"app": name}
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: &one,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: ann},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{container(0)}},
				},
			},
		}
	}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, deploy("api", map[string]string{
		cluster.AnnotationSimReason: "CrashLoopBackOff", cluster.AnnotationSimExitCode: "1", cluster.AnnotationSimDuration: "200ms",
	}), metav1.CreateOptions{})
	must(t, err)
	f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "service", Name: "api"}, "crash-loop")
	contains(t, f, "keeps crashing", "exited with code 1", "CrashLoopBackOff")

	_, err = cs.AppsV1().Deployments(ns).Create(ctx, deploy("pull", map[string]string{cluster.AnnotationSimReason: "ImagePullBackOff"}), metav1.CreateOptions{})
	must(t, err)
	f, _ = waitFinding(t, cs, ns, backend.Ref{Kind: "service", Name: "pull"}, "image-pull-failed")
	contains(t, f, "example/train:1.0", "ImagePullBackOff")
}

func TestLiveMissingTarget(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ns := c.Namespace(t, "diag-missing")
	_, err := diagnose.Diagnose(context.Background(), cs, ns, backend.Ref{Kind: "job", Name: "never-created"})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("error = %v, want ErrNotFound", err)
	}
}

// C12 and C13 live: under restartPolicy OnFailure the kubelet restarts the
// container in place, so status.failed stays 0 while the Job runs; when the
// Job controller finally fails it, it deletes the pod and its logs.
func TestLiveOnFailureJobs(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ns := c.Namespace(t, "diag-onfailure")
	ctx := context.Background()
	job := func(name string, backoff int32) *batchv1.Job {
		return &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.JobSpec{
				BackoffLimit: &backoff,
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
						cluster.AnnotationSimReason: "CrashLoopBackOff", cluster.AnnotationSimExitCode: "1", cluster.AnnotationSimDuration: "200ms",
					}},
					Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{container(0)}},
				},
			},
		}
	}
	_, err := cs.BatchV1().Jobs(ns).Create(ctx, job("looping", 1000), metav1.CreateOptions{})
	must(t, err)
	f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "job", Name: "looping"}, "job-restarting-in-place")
	contains(t, f, "restartPolicy OnFailure", "status.failed stays 0", "restartPolicy: Never")

	_, err = cs.BatchV1().Jobs(ns).Create(ctx, job("nightly", 1), metav1.CreateOptions{})
	must(t, err)
	ref := backend.Ref{Kind: "job", Name: "nightly"}
	f, _ = waitFinding(t, cs, ns, ref, "job-backoff-limit-exceeded")
	// The controller deletes the pod after it sets the Failed condition.
	must(t, wait.PollUntilContextTimeout(ctx, 300*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		fs, err := diagnose.Diagnose(ctx, cs, ns, ref)
		if err != nil {
			return false, nil
		}
		for _, g := range fs {
			if g.RuleID == "job-backoff-limit-exceeded" && strings.Contains(g.Message, "logs are gone") {
				f = g
				return true, nil
			}
		}
		return false, nil
	}))
	contains(t, f, "restartPolicy OnFailure", "Deleted pod")
}

// C02/C03 live: the real DaemonSet controller schedules a device plugin
// that neither tolerates the GPU taint nor matches the CPU node's labels on
// no node.
func TestLiveDevicePluginOnNoNode(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ns := c.Namespace(t, "diag-ds")
	ctx := context.Background()
	labels := map[string]string{"name": "nvidia-device-plugin-ds"}
	_, err := cs.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "nvidia-device-plugin-daemonset"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"nvidia.com/gpu.present": "true"},
					Tolerations:  []corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists}},
					Containers:   []corev1.Container{{Name: "nvidia-device-plugin-ctr", Image: "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"}},
				},
			},
		},
	}, metav1.CreateOptions{})
	must(t, err)
	// Wait until the controller has written its status (observedGeneration).
	must(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, "nvidia-device-plugin-daemonset", metav1.GetOptions{})
		return err == nil && d.Status.ObservedGeneration >= d.Generation, nil
	}))
	f, _ := waitFinding(t, cs, ns, backend.Ref{Kind: "daemonset", Name: "nvidia-device-plugin-daemonset"}, "daemonset-not-scheduled")
	if !f.Permanent {
		t.Errorf("a DaemonSet no node accepts is permanent")
	}
	contains(t, f, "GPU device plugin", "taint nvidia.com/gpu=present:NoSchedule is not tolerated", "nvidia.com/gpu.present=true", "operator: Exists")
}

// The whole command line on the Kubernetes target: petrel --target
// kubernetes --kubeconfig … -n NS diagnose job/NAME -o json, through the
// Kubernetes backend's Diagnose.
func TestLiveCommandLine(t *testing.T) {
	c := cluster.Start(t, opts)
	cs := c.Client(t)
	ns := c.Namespace(t, "diag-cli")
	ctx := context.Background()
	_, err := cs.CoreV1().Pods(ns).Create(ctx, pod("big", nil, true, container(4)), metav1.CreateOptions{})
	must(t, err)
	waitFinding(t, cs, ns, backend.Ref{Kind: "pod", Name: "big"}, "gpu-request-exceeds-nodes")

	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		f := &factory.Factory{IO: &factory.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}}
		cmd := root.NewCmd(f)
		cmd.SetArgs(append([]string{"--target", "kubernetes", "--kubeconfig", c.Kubeconfig, "-n", ns, "diagnose"}, args...))
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		err := cmd.ExecuteContext(ctx)
		return out.String(), errOut.String(), err
	}
	out, stderr, err := run("pod/big", "-o", "json")
	if err != nil {
		t.Fatalf("petrel diagnose: %v\n%s", err, stderr)
	}
	var fs []backend.Finding
	must(t, json.Unmarshal([]byte(out), &fs))
	if len(fs) == 0 || fs[0].RuleID != "gpu-request-exceeds-nodes" || !fs[0].Permanent {
		t.Fatalf("findings = %s", out)
	}
	out, _, err = run("pod/big")
	must(t, err)
	if !strings.Contains(out, "asks for 4 nvidia.com/gpu but the largest node has 1 — it will never schedule.") || !strings.Contains(out, "(permanent: will not resolve by waiting)") {
		t.Errorf("text output:\n%s", out)
	}
	if _, _, err := run("job/absent"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("error for a missing job = %v, want ErrNotFound", err)
	}
}
