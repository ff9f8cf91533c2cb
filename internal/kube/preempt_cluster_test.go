package kube

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

// TestPreemptedWorkerIsIgnoredByTheRenderedPolicy: Preempt evicts a
// distributed job's running workers through the Eviction API; the API
// server gives them the DisruptionTarget condition. kwok's fake nodes do
// not act on a graceful delete as a kubelet does, so the test does the
// kubelet's part (the container killed by SIGTERM: exit 143, phase
// Failed). The rendered Ignore rule (before the fail-fast rule) matches:
// the Job controller re-creates the evicted indices instead of failing
// the Job (backoffLimit 0) and counts no failure.
func TestPreemptedWorkerIsIgnoredByTheRenderedPolicy(t *testing.T) {
	t.Parallel()
	b, c, ns := testBackend(t, gpuCluster)
	ctx := context.Background()
	cs := c.Client(t)
	docs := parseString(t, `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: ddp
  annotations: {petrel.dev/sim-duration: "10m"}
spec:
  image: busybox:1.37
  command: [sh, -c, "sleep 8"]
  numNodes: 2
  backoffLimit: 0
`)
	if _, err := b.Apply(ctx, docs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindJob, "ddp")})
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers not running after 2m: %d of 2", running)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := b.Preempt(ctx, "ddp"); err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindJob, "ddp")})
	if err != nil {
		t.Fatal(err)
	}
	evicted := map[string]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !hasPodCondition(p, corev1.DisruptionTarget, corev1.ConditionTrue) {
			t.Errorf("pod %s after eviction: conditions %+v, want DisruptionTarget=True", p.Name, p.Status.Conditions)
			continue
		}
		evicted[p.Name] = true
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, Image: "busybox:1.37",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 143, Reason: "Error", FinishedAt: metav1.Now()}}}}
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("fail evicted pod %s as its kubelet would: %v", p.Name, err)
		}
	}
	// The Job controller re-creates both indices; the Job stays running.
	for {
		j, err := b.GetJob(ctx, "ddp")
		if err != nil {
			t.Fatal(err)
		}
		if j.Phase == backend.JobFailed {
			t.Fatalf("ddp failed after an eviction: %+v, want the DisruptionTarget Ignore rule to keep it running", j.FinalCondition())
		}
		fresh := 0
		for _, a := range j.Attempts {
			if !evicted[a.Name] {
				fresh++
			}
		}
		k, err := cs.BatchV1().Jobs(ns).Get(ctx, "ddp", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The evicted pods may be gone once counted (their finalizer
		// removed); Ignore means status.failed stays 0.
		if fresh == 2 && k.Status.Failed == 0 && (k.Status.UncountedTerminatedPods == nil || len(k.Status.UncountedTerminatedPods.Failed) == 0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempts %+v: want 2 replacements and no failure counted", j.Attempts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := b.Delete(ctx, backend.Ref{Kind: KindJob, Name: "ddp"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Preempt(ctx, "ddp"); err == nil {
		t.Errorf("preempt of a deleted job: err = nil, want not found")
	}
}
