package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/petrel-dev/petrel/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// gpuJob returns a Job whose single pod asks for one GPU and tolerates the
// GPU taint, with the given backoffLimit and pod annotations.
func gpuJob(name string, backoffLimit int32, annotations map[string]string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoffLimit,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Tolerations: []corev1.Toleration{{
						Key: string(cluster.GPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
					}},
					Containers: []corev1.Container{{
						Name:  "train",
						Image: "python:3.12-slim",
						Resources: corev1.ResourceRequirements{
							Limits: corev1.ResourceList{cluster.GPUResource: resource.MustParse("1")},
						},
					}},
				},
			},
		},
	}
}

// waitJob watches the Job until done says it is finished and returns it.
func waitJob(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, done func(*batchv1.Job) bool) *batchv1.Job {
	t.Helper()
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cs.BatchV1().Jobs(ns).List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cs.BatchV1().Jobs(ns).Watch(ctx, o)
		},
	}
	var last *batchv1.Job
	ev, err := watchtools.UntilWithSync(ctx, lw, &batchv1.Job{}, nil, func(e watch.Event) (bool, error) {
		j, ok := e.Object.(*batchv1.Job)
		if !ok {
			return false, nil
		}
		last = j
		return done(j), nil
	})
	if err != nil {
		t.Fatalf("job %s/%s did not finish: %v; last status: %+v", ns, name, err, statusOf(last))
	}
	return ev.Object.(*batchv1.Job)
}

// waitPod watches the pods matching selector until done says one is as
// expected and returns it.
func waitPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, selector string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return cs.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return cs.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	var last *corev1.Pod
	ev, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(e watch.Event) (bool, error) {
		p, ok := e.Object.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		last = p
		return done(p), nil
	})
	if err != nil {
		var st any
		if last != nil {
			st = last.Status
		}
		t.Fatalf("no pod %q in %s got there: %v; last status: %+v", selector, ns, err, st)
	}
	return ev.Object.(*corev1.Pod)
}

func statusOf(j *batchv1.Job) any {
	if j == nil {
		return nil
	}
	return j.Status
}

func jobCondition(j *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if c := &j.Status.Conditions[i]; c.Type == typ && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func finished(j *batchv1.Job) bool {
	return jobCondition(j, batchv1.JobComplete) != nil || jobCondition(j, batchv1.JobFailed) != nil
}

// jobPods lists the Job's pods (label batch.kubernetes.io/job-name).
func jobPods(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, job string) []corev1.Pod {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func exitCodes(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Terminated != nil {
				out = append(out, fmt.Sprintf("%s:%d:%s", p.Status.Phase, s.State.Terminated.ExitCode, s.State.Terminated.Reason))
			}
		}
	}
	return out
}

// TestJobsOnFakeGPUNodes runs batch/v1 Jobs through the real Job controller
// and scheduler on two fake GPU nodes (tainted) and one plain node, one
// subtest per way a pod can end.
func TestJobsOnFakeGPUNodes(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Nodes: 1})
	nodes := c.AddNodes(t, 2, 4, true)
	cs := c.Client(t)

	t.Run("pod succeeds and the Job completes", func(t *testing.T) {
		t.Parallel()
		ns := c.Namespace(t, "complete")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, gpuJob("ok", 2, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		j := waitJob(ctx, t, cs, ns, "ok", finished)
		if jobCondition(j, batchv1.JobComplete) == nil {
			t.Fatalf("job ended without condition Complete: %+v", j.Status.Conditions)
		}
		pods := jobPods(ctx, t, cs, ns, "ok")
		if len(pods) != 1 || pods[0].Status.Phase != corev1.PodSucceeded {
			t.Fatalf("want one Succeeded pod, got %v", exitCodes(pods))
		}
		if n := pods[0].Spec.NodeName; n != nodes[0] && n != nodes[1] {
			t.Errorf("pod ran on node %q, want one of the GPU nodes %v", n, nodes)
		}
	})

	t.Run("pods serve the log lines NamespaceLogs set", func(t *testing.T) {
		t.Parallel()
		ns := c.Namespace(t, "logs")
		lines := []string{"epoch=1 loss=0.90 accuracy=0.50", "epoch=2 loss=0.41 accuracy=0.93"}
		c.NamespaceLogs(t, ns, lines...)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, gpuJob("logs", 0, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitJob(ctx, t, cs, ns, "logs", finished)
		pod := jobPods(ctx, t, cs, ns, "logs")[0].Name
		// kwok learns about the ClusterLogs object from a watch; until
		// then the kubelet API it serves answers "log target not found".
		var got string
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			raw, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Timestamps: true}).DoRaw(ctx)
			got = string(raw)
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("no log for pod %s: %v (last answer %q)", pod, err, got)
		}
		var text []string
		for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
			ts, line, ok := strings.Cut(l, " ")
			if _, err := time.Parse(time.RFC3339Nano, ts); !ok || err != nil {
				t.Fatalf("log line %q does not start with a timestamp", l)
			}
			text = append(text, line)
		}
		if strings.Join(text, "\n") != strings.Join(lines, "\n") {
			t.Errorf("pod log = %q, want %q", text, lines)
		}

		// PodLogs for this one pod wins over the namespace's lines.
		c.PodLogs(t, ns, pod, "only this pod")
		err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			raw, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
			got = string(raw)
			return err == nil && got == "only this pod\n", nil
		})
		if err != nil {
			t.Fatalf("PodLogs did not take over pod %s's log: %v (last answer %q)", pod, err, got)
		}

		// A follow stream carries the lines too (and stays open: see
		// NamespaceLogs).
		lines = []string{"only this pod"}
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		stream, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(sctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		sc := bufio.NewScanner(stream)
		for i := 0; i < len(lines); i++ {
			if !sc.Scan() {
				t.Fatalf("follow stream ended after %d lines: %v", i, sc.Err())
			}
			if sc.Text() != lines[i] {
				t.Errorf("follow line %d = %q, want %q", i, sc.Text(), lines[i])
			}
		}
	})

	t.Run("failing pods exhaust backoffLimit", func(t *testing.T) {
		t.Parallel()
		ns := c.Namespace(t, "backoff")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		job := gpuJob("fails", 2, map[string]string{cluster.AnnotationSimExitCode: "3", cluster.AnnotationSimDuration: "200ms"})
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		j := waitJob(ctx, t, cs, ns, "fails", finished)
		cond := jobCondition(j, batchv1.JobFailed)
		if cond == nil || cond.Reason != batchv1.JobReasonBackoffLimitExceeded {
			t.Fatalf("want condition Failed with reason BackoffLimitExceeded, got %+v", j.Status.Conditions)
		}
		if j.Status.Failed != 3 {
			t.Errorf("status.failed = %d, want backoffLimit+1 = 3", j.Status.Failed)
		}
		pods := jobPods(ctx, t, cs, ns, "fails")
		codes := exitCodes(pods)
		if len(pods) != 3 || strings.Join(codes, " ") != "Failed:3:Error Failed:3:Error Failed:3:Error" {
			t.Errorf("want 3 pods Failed with exit code 3, got %d: %v", len(pods), codes)
		}
	})

	t.Run("podFailurePolicy FailJob on an exit code fails at once", func(t *testing.T) {
		t.Parallel()
		ns := c.Namespace(t, "policy")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		job := gpuJob("policy", 5, map[string]string{cluster.AnnotationSimExitCode: "42", cluster.AnnotationSimDuration: "200ms"})
		job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action:      batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
		}}}
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		j := waitJob(ctx, t, cs, ns, "policy", finished)
		cond := jobCondition(j, batchv1.JobFailed)
		if cond == nil || cond.Reason != batchv1.JobReasonPodFailurePolicy {
			t.Fatalf("want condition Failed with reason PodFailurePolicy, got %+v", j.Status.Conditions)
		}
		if pods := jobPods(ctx, t, cs, ns, "policy"); len(pods) != 1 {
			t.Errorf("want 1 attempt, got %d: %v", len(pods), exitCodes(pods))
		}
	})

	t.Run("OOMKilled pod reports reason and exit code 137", func(t *testing.T) {
		t.Parallel()
		ns := c.Namespace(t, "oom")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		job := gpuJob("oom", 0, map[string]string{cluster.AnnotationSimReason: "OOMKilled"})
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		j := waitJob(ctx, t, cs, ns, "oom", finished)
		if jobCondition(j, batchv1.JobFailed) == nil {
			t.Fatalf("want condition Failed, got %+v", j.Status.Conditions)
		}
		if codes := exitCodes(jobPods(ctx, t, cs, ns, "oom")); strings.Join(codes, " ") != "Failed:137:OOMKilled" {
			t.Errorf("want one pod Failed:137:OOMKilled, got %v", codes)
		}
	})

	t.Run("ImagePullBackOff pod stays Pending", func(t *testing.T) {
		t.Parallel()
		ns := c.Namespace(t, "pull")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		job := gpuJob("pull", 0, map[string]string{cluster.AnnotationSimReason: "ImagePullBackOff"})
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := waitPod(ctx, t, cs, ns, batchv1.JobNameLabel+"=pull", func(p *corev1.Pod) bool {
			for _, s := range p.Status.ContainerStatuses {
				if s.State.Waiting != nil && s.State.Waiting.Reason == "ImagePullBackOff" {
					return true
				}
			}
			return false
		})
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("pod phase %s, want Pending", p.Status.Phase)
		}
	})

	t.Run("restarting pod on the plain node crash-loops with its exit code", func(t *testing.T) {
		t.Parallel()
		ns := c.Namespace(t, "crash")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "crash", Labels: map[string]string{"app": "crash"}, Annotations: map[string]string{
				cluster.AnnotationSimReason: "CrashLoopBackOff", cluster.AnnotationSimExitCode: "2", cluster.AnnotationSimDuration: "200ms",
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "python:3.12-slim"}}},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(ctx, t, cs, ns, "app=crash", func(p *corev1.Pod) bool {
			for _, s := range p.Status.ContainerStatuses {
				if s.RestartCount >= 2 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" &&
					s.LastTerminationState.Terminated != nil && s.LastTerminationState.Terminated.ExitCode == 2 {
					return p.Status.Phase == corev1.PodRunning
				}
			}
			return false
		})
	})

	t.Run("GPU pod without free GPUs stays Pending with the scheduler's reason", func(t *testing.T) {
		t.Parallel()
		ns := c.Namespace(t, "nogpu")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		job := gpuJob("big", 0, nil)
		job.Spec.Template.Spec.Containers[0].Resources.Limits[cluster.GPUResource] = resource.MustParse("16")
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := waitPod(ctx, t, cs, ns, batchv1.JobNameLabel+"=big", func(p *corev1.Pod) bool {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					return true
				}
			}
			return false
		})
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && !strings.Contains(cond.Message, "Insufficient nvidia.com/gpu") {
				t.Errorf("PodScheduled message %q does not name the missing GPUs", cond.Message)
			}
		}
	})
}

// TestStartFailsClearlyWithoutBinaries checks the error a developer sees when
// the binaries were never built: it must name the build command.
func TestStartFailsClearlyWithoutBinaries(t *testing.T) {
	t.Setenv("PETREL_CLUSTER_BIN", t.TempDir())
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cluster.Start(ft, cluster.Options{Private: true})
	}()
	<-done
	if !strings.Contains(ft.msg, "hack/cluster/build.sh") || !strings.Contains(ft.msg, "kube-apiserver") {
		t.Errorf("Start's failure does not say what is missing and how to build it: %q", ft.msg)
	}
}

// fatalRecorder records Fatalf instead of failing the test, ending the
// goroutine as testing.T does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	goruntime.Goexit()
}
