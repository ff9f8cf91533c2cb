package kube

// Tests against a real control plane (kube-apiserver, controller-manager,
// scheduler, etcd v1.37.2) with kwok nodes: see test/cluster. Pods do not
// run commands there; the annotations petrel.dev/sim-* in a spec's metadata
// (copied to the pod template) choose how each attempt ends.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/serve"
	"github.com/petrel-dev/petrel/internal/spec"
	"github.com/petrel-dev/petrel/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// gpuCluster is shared by the tests: two CPU nodes and one GPU node with two
// GPUs, tainted as managed GPU pools are.
var gpuCluster = cluster.Options{Nodes: 2, GPUNodes: 1, GPUsPerNode: 2, GPUTaint: true}

// testBackend starts (or reuses) a cluster, makes a namespace and returns a
// backend configured the way users configure kubectl: --kubeconfig and -n.
func testBackend(t *testing.T, opts cluster.Options) (*Backend, *cluster.Cluster, string) {
	t.Helper()
	c := cluster.Start(t, opts)
	ns := c.Namespace(t, strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:min(20, len(t.Name()))])
	b, err := New(Config{Kubeconfig: c.Kubeconfig, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return b, c, ns
}

// provideVolumes creates a PersistentVolume for each Volume in docs,
// pre-bound to its claim in ns (the test cluster has no dynamic
// provisioner, as many bare clusters have none), and deletes them when t
// ends.
func provideVolumes(t *testing.T, cs kubernetes.Interface, ns string, docs []*spec.Document) {
	t.Helper()
	ctx := context.Background()
	for _, d := range docs {
		v, ok := d.Object.(*v1alpha1.Volume)
		if !ok {
			continue
		}
		size := resource.MustParse(DefaultVolumeSize)
		if v.Spec.Size != nil {
			size = *v.Spec.Size
		}
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + v.Metadata.Name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:               corev1.ResourceList{corev1.ResourceStorage: size},
				AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany, corev1.ReadOnlyMany},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + ns + "/" + v.Metadata.Name}},
				ClaimRef:               &corev1.ObjectReference{Namespace: ns, Name: v.Metadata.Name},
			},
		}
		if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cs.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
		})
	}
}

func parse(t *testing.T, file string) []*spec.Document {
	t.Helper()
	docs, err := spec.ParseFile(file)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return docs
}

func parseString(t *testing.T, src string) []*spec.Document {
	t.Helper()
	docs, err := spec.Parse(filepath.Join(t.TempDir(), "spec.yaml"), []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return docs
}

// waitFinished follows WatchJob until the job finishes and returns the final status.
func waitFinished(t *testing.T, b *Backend, name string, timeout time.Duration) backend.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ch, err := b.WatchJob(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var last backend.Job
	for j := range ch {
		last = j
	}
	if !last.Finished() {
		t.Fatalf("job %s did not finish in %s: last status %+v", name, timeout, last)
	}
	return last
}

// eventually polls check until it reports true or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var state string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, state = check(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not reached in %s; last state: %s", what, timeout, state)
}

func exitCodes(j backend.Job) []int32 {
	var out []int32
	for _, a := range j.Attempts {
		if a.ExitCode == nil {
			out = append(out, -1)
		} else {
			out = append(out, *a.ExitCode)
		}
	}
	return out
}

// TestServerSideDryRunAcceptsEveryRenderedObject sends every object render
// makes, for every example and test spec, to the real API server with
// dryRun=All: validation, defaulting and admission must all accept them.
func TestServerSideDryRunAcceptsEveryRenderedObject(t *testing.T) {
	t.Parallel()
	_, c, ns := testBackend(t, gpuCluster)
	b, err := New(Config{Kubeconfig: c.Kubeconfig, Namespace: ns, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../../examples/*/*.yaml")
	if len(examples) == 0 {
		t.Fatal("no examples found under examples/")
	}
	ctx := context.Background()
	for _, f := range append(files, examples...) {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			set, err := Render(parse(t, f), Options{Namespace: ns, IncludeSecretValues: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.checkServed(ctx, set); err != nil {
				t.Fatal(err)
			}
			for _, o := range set.Objects {
				if _, err := b.applyObject(ctx, o); err != nil {
					t.Errorf("%s %s rejected by the API server: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
				}
			}
		})
	}
	// Dry run stores nothing.
	jobs, err := c.Client(t).BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 0 {
		t.Errorf("dry run left %d jobs (err %v)", len(jobs.Items), err)
	}
}

// TestDigitsTrainsToCompleteOnAGPUNode applies the digits example with one
// GPU asked for: the scheduler must place it on the tainted GPU node (the
// rendered toleration) and the Job controller must report Complete.
func TestDigitsTrainsToCompleteOnAGPUNode(t *testing.T) {
	t.Parallel()
	b, c, _ := testBackend(t, gpuCluster)
	ctx := context.Background()
	docs := parse(t, "../../examples/digits/train.yaml")
	var job *v1alpha1.TrainingJob
	for _, d := range docs {
		if j, ok := d.Object.(*v1alpha1.TrainingJob); ok {
			job = j
		}
	}
	job.Spec.Resources.GPU = 1
	provideVolumes(t, c.Client(t), b.Namespace(), docs)

	applied, err := b.Apply(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, a := range applied {
		kinds[a.Kind+"/"+a.Name] = a.Action
	}
	for _, want := range []string{"PersistentVolumeClaim/digits-data", "PersistentVolumeClaim/digits-models", "ConfigMap/digits-data-seed", "Job/digits-train"} {
		if kinds[want] != "created" {
			t.Errorf("apply: %s = %q, want created (all: %v)", want, kinds[want], kinds)
		}
	}

	j := waitFinished(t, b, "digits-train", 2*time.Minute)
	if j.Phase != backend.JobComplete || len(j.Attempts) != 1 || j.Attempts[0].Phase != backend.PodSucceeded {
		t.Fatalf("job = phase %s, attempts %+v; want Complete after one successful attempt", j.Phase, j.Attempts)
	}
	node, err := c.Client(t).CoreV1().Nodes().Get(ctx, j.Attempts[0].Node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := node.Status.Allocatable[cluster.GPUResource]; !ok {
		t.Errorf("attempt ran on %s, which has no GPUs", node.Name)
	}
	if j.Spec.Resources.GPU != 1 || j.Spec.Command[0] != "python3" {
		t.Errorf("spec read back = %+v", j.Spec)
	}

	// Applying the same spec again changes nothing and is not an error.
	again, err := b.Apply(ctx, docs)
	if err != nil {
		t.Fatalf("re-apply of an unchanged spec: %v", err)
	}
	for _, a := range again {
		if a.Action != "configured" {
			t.Errorf("re-apply: %s %s %s, want configured", a.Kind, a.Name, a.Action)
		}
	}
	// A changed pod template cannot be applied to an existing Job.
	job.Spec.Args = append(job.Spec.Args, "--lr", "0.1")
	if _, err := b.Apply(ctx, docs); err == nil || !strings.Contains(err.Error(), "petrel delete job digits-train") {
		t.Errorf("apply of a changed job: err = %v, want the fix named", err)
	}
}

// TestFailingPodsExhaustBackoffLimit: every attempt exits 3, so the Job
// fails with BackoffLimitExceeded after exactly backoffLimit+1 attempts.
func TestFailingPodsExhaustBackoffLimit(t *testing.T) {
	t.Parallel()
	b, _, _ := testBackend(t, gpuCluster)
	ctx := context.Background()
	if _, err := b.Apply(ctx, parse(t, "testdata/failing-job.yaml")); err != nil {
		t.Fatal(err)
	}
	j := waitFinished(t, b, "always-fails", 3*time.Minute)
	fc := j.FinalCondition()
	if j.Phase != backend.JobFailed || fc == nil || fc.Reason != backend.ReasonBackoffLimitExceeded {
		t.Fatalf("job = %s %+v, want Failed with BackoffLimitExceeded", j.Phase, fc)
	}
	got, err := b.GetJob(ctx, "always-fails")
	if err != nil {
		t.Fatal(err)
	}
	if codes := exitCodes(*got); fmt.Sprint(codes) != "[3 3 3]" {
		t.Errorf("attempt exit codes = %v, want [3 3 3] (backoffLimit 2 + 1 attempts)", codes)
	}
	for _, a := range got.Attempts {
		if a.Reason != "Error" || a.StartTime == nil || a.EndTime == nil || a.Node == "" {
			t.Errorf("attempt %d = %+v, want reason Error with times and node", a.Index, a)
		}
	}
	if got.Failed != 3 {
		t.Errorf("status.failed = %d, want 3", got.Failed)
	}
}

// TestPodFailurePolicyFailJobFailsAtOnce: exit code 42 matches a FailJob
// rule, so one attempt ends the job (reason PodFailurePolicy) although
// backoffLimit allows five retries.
func TestPodFailurePolicyFailJobFailsAtOnce(t *testing.T) {
	t.Parallel()
	b, _, _ := testBackend(t, gpuCluster)
	ctx := context.Background()
	docs := parseString(t, `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: bad-args
  annotations: {petrel.dev/sim-exit-code: "42"}
spec:
  image: busybox:1.37
  command: [sh, -c, "exit 42"]
  backoffLimit: 5
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {operator: In, values: [42]}
`)
	if _, err := b.Apply(ctx, docs); err != nil {
		t.Fatal(err)
	}
	j := waitFinished(t, b, "bad-args", 2*time.Minute)
	fc := j.FinalCondition()
	if j.Phase != backend.JobFailed || fc == nil || fc.Reason != backend.ReasonPodFailurePolicy {
		t.Fatalf("job = %s %+v, want Failed with PodFailurePolicy", j.Phase, fc)
	}
	if codes := exitCodes(j); fmt.Sprint(codes) != "[42]" {
		t.Errorf("attempts' exit codes = %v, want one attempt exiting 42", codes)
	}
}

// TestGPUJobWithoutFreeGPUsStaysPending: on a cluster without GPU nodes the
// scheduler cannot place the attempt; the job stays Pending and says why,
// with the scheduler's FailedScheduling event. A GPU node added later lets
// it run to Complete.
func TestGPUJobWithoutFreeGPUsStaysPending(t *testing.T) {
	t.Parallel()
	b, c, ns := testBackend(t, cluster.Options{Nodes: 1, Private: true})
	ctx := context.Background()
	docs := parseString(t, `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: gpu-train}
spec:
  image: ghcr.io/example/train:1.0
  command: [python3, train.py]
  resources: {cpu: "2", memory: 8Gi, gpu: 1}
`)
	if _, err := b.Apply(ctx, docs); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ch, err := b.WatchJob(wctx, "gpu-train")
	if err != nil {
		t.Fatal(err)
	}
	var pending backend.Job
	for j := range ch {
		if j.Phase != backend.JobPending {
			t.Fatalf("job left Pending without a GPU node: %+v", j)
		}
		if strings.Contains(j.Waiting.String(), "Insufficient nvidia.com/gpu") {
			pending = j
			cancel()
		}
	}
	if pending.Name == "" {
		t.Fatal("the job never said it waits for GPUs")
	}
	if !strings.HasPrefix(pending.Waiting.String(), "unschedulable: 0/1 nodes are available") {
		t.Errorf("waiting = %q, want the scheduler's message", pending.Waiting)
	}
	cs := c.Client(t)
	eventually(t, 30*time.Second, "a FailedScheduling event", func() (bool, string) {
		ev, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pending.Attempts[0].Name})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range ev.Items {
			if e.Reason == "FailedScheduling" && strings.Contains(e.Message, "Insufficient nvidia.com/gpu") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(ev.Items))
	})

	// diagnose (internal/diagnose over live state) names the GPU shortage.
	findings, err := b.Diagnose(ctx, backend.Ref{Kind: KindJob, Name: "gpu-train"})
	if err != nil {
		t.Fatal(err)
	}
	gpu := false
	for _, f := range findings {
		gpu = gpu || strings.Contains(f.Message+strings.Join(f.Evidence, " "), "nvidia.com/gpu")
	}
	if !gpu {
		t.Errorf("diagnose findings %+v do not mention nvidia.com/gpu", findings)
	}

	// A tainted GPU node arrives: the toleration lets the attempt land there.
	c.AddNodes(t, 1, 2, true)
	if j := waitFinished(t, b, "gpu-train", 2*time.Minute); j.Phase != backend.JobComplete || len(j.Attempts) != 1 {
		t.Errorf("after a GPU node joined: phase %s, %d attempts; want Complete after 1", j.Phase, len(j.Attempts))
	}
}

// TestServeRollsOutWithHPA: serve creates a Deployment that becomes
// Available with minReplicas ready pods, a ClusterIP Service and an HPA on
// 60% CPU; Scale turns autoscaling off and sets the replicas.
func TestServeRollsOutWithHPA(t *testing.T) {
	t.Parallel()
	b, c, ns := testBackend(t, gpuCluster)
	ctx := context.Background()
	if _, err := b.Apply(ctx, parse(t, "testdata/autoscaled-service.yaml")); err != nil {
		t.Fatal(err)
	}
	cs := c.Client(t)
	h, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "digits-serve", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *h.Spec.Metrics[0].Resource.Target.AverageUtilization != 60 || *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 8 {
		t.Errorf("HPA spec = %+v", h.Spec)
	}
	// The Deployment has no replicas in petrel's configuration; with the
	// HPA's minimum of 2 the HPA controller scales it from 1 to 2.
	eventually(t, 90*time.Second, "Deployment Available with 2 ready replicas", func() (bool, string) {
		s, err := b.GetService(ctx, "digits-serve")
		if err != nil {
			return false, err.Error()
		}
		avail := false
		for _, c := range s.Conditions {
			avail = avail || (c.Type == "Available" && c.Status == "True")
		}
		// serve.RolledOut is what `petrel serve` waits for.
		return avail && s.ReadyReplicas == 2 && serve.RolledOut(s), fmt.Sprintf("available=%v ready=%d desired=%d replicas=%+v", avail, s.ReadyReplicas, s.DesiredReplicas, s.Replicas)
	})
	s, err := b.GetService(ctx, "digits-serve")
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != fmt.Sprintf("http://digits-serve.%s.svc:8080", ns) || !strings.HasSuffix(s.Metric, "/ 60%") || len(s.Replicas) != 2 || !s.Replicas[0].Ready {
		t.Errorf("service = url %s metric %q replicas %+v", s.URL, s.Metric, s.Replicas)
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, "digits-serve", metav1.GetOptions{})
	if err != nil || svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP == "" {
		t.Errorf("Service = %+v, %v; want a ClusterIP service", svc.Spec, err)
	}
	list, err := b.ListServices(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "digits-serve" {
		t.Errorf("ListServices = %+v, %v", list, err)
	}

	if err := b.Scale(ctx, "digits-serve", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "digits-serve", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("HPA still there after Scale (err %v); it would undo the scale", err)
	}
	eventually(t, 60*time.Second, "3 ready replicas", func() (bool, string) {
		s, err := b.GetService(ctx, "digits-serve")
		if err != nil {
			return false, err.Error()
		}
		return s.ReadyReplicas == 3 && s.DesiredReplicas == 3, fmt.Sprintf("ready=%d desired=%d", s.ReadyReplicas, s.DesiredReplicas)
	})

	// The next apply turns autoscaling back on; an apply without
	// autoscaling removes the HPA petrel made.
	docs := parse(t, "testdata/autoscaled-service.yaml")
	if _, err := b.Apply(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "digits-serve", metav1.GetOptions{}); err != nil {
		t.Errorf("HPA not back after apply: %v", err)
	}
	is := docs[0].Object.(*v1alpha1.InferenceService)
	is.Spec.Autoscaling = nil
	if _, err := b.Apply(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "digits-serve", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("HPA left after autoscaling was removed from the spec (err %v)", err)
	}
}

// TestDeleteRemovesOnlyWhatPetrelMade applies a job, a service and volumes,
// plus look-alike objects petrel does not manage; delete must remove every
// object petrel made (pods included) and none of the look-alikes.
func TestDeleteRemovesOnlyWhatPetrelMade(t *testing.T) {
	t.Parallel()
	b, c, ns := testBackend(t, gpuCluster)
	ctx := context.Background()
	cs := c.Client(t)
	docs := append(parse(t, "testdata/gpu-job.yaml"), parse(t, "testdata/fixed-service.yaml")...)
	if _, err := b.Apply(ctx, docs); err != nil {
		t.Fatal(err)
	}
	// Look-alikes: same names and app.kubernetes.io/name, not managed by petrel.
	lookalike := map[string]string{LabelName: "gpu-train", LabelWorkload: "gpu-train", LabelKind: KindJob}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gpu-train", Labels: lookalike}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gpu-train-job-env-backup", Labels: lookalike}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-train-2", Labels: lookalike},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "echo's pods exist", func() (bool, string) {
		p, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindService, "echo")})
		if err != nil {
			return false, err.Error()
		}
		return len(p.Items) == 3, fmt.Sprintf("%d pods", len(p.Items))
	})

	for _, ref := range []backend.Ref{{Kind: KindJob, Name: "gpu-train"}, {Kind: KindService, Name: "echo"}, {Kind: KindVolume, Name: "ckpt"}} {
		if err := b.Delete(ctx, ref); err != nil {
			t.Fatalf("delete %s %s: %v", ref.Kind, ref.Name, err)
		}
	}
	if err := b.Delete(ctx, backend.Ref{Kind: KindJob, Name: "gpu-train"}); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("second delete: err = %v, want ErrNotFound", err)
	}

	managed := metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy}
	eventually(t, 60*time.Second, "nothing managed by petrel left", func() (bool, string) {
		left := countManaged(ctx, cs, ns, managed)
		return left == "", left
	})
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "gpu-train", metav1.GetOptions{}); err != nil {
		t.Errorf("unmanaged ConfigMap gpu-train was touched: %v", err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, "gpu-train-job-env-backup", metav1.GetOptions{}); err != nil {
		t.Errorf("unmanaged Secret was touched: %v", err)
	}
	if j, err := cs.BatchV1().Jobs(ns).Get(ctx, "gpu-train-2", metav1.GetOptions{}); err != nil || j.DeletionTimestamp != nil {
		t.Errorf("unmanaged Job gpu-train-2 was touched: %v", err)
	}
}

// countManaged lists what is left of petrel's objects, "" when nothing.
func countManaged(ctx context.Context, cs kubernetes.Interface, ns string, opts metav1.ListOptions) string {
	var left []string
	add := func(kind string, n int, err error) {
		if err != nil {
			left = append(left, kind+": "+err.Error())
		} else if n > 0 {
			left = append(left, fmt.Sprintf("%d %s", n, kind))
		}
	}
	jobs, err := cs.BatchV1().Jobs(ns).List(ctx, opts)
	add("jobs", len(jobs.Items), err)
	pods, err := cs.CoreV1().Pods(ns).List(ctx, opts)
	add("pods", len(pods.Items), err)
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, opts)
	add("deployments", len(deps.Items), err)
	rs, err := cs.AppsV1().ReplicaSets(ns).List(ctx, opts)
	add("replicasets", len(rs.Items), err)
	svcs, err := cs.CoreV1().Services(ns).List(ctx, opts)
	add("services", len(svcs.Items), err)
	hpas, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, opts)
	add("hpas", len(hpas.Items), err)
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, opts)
	add("pvcs", len(pvcs.Items), err)
	secs, err := cs.CoreV1().Secrets(ns).List(ctx, opts)
	add("secrets", len(secs.Items), err)
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, opts)
	add("configmaps", len(cms.Items), err)
	return strings.Join(left, ", ")
}

// TestRBACForbiddenNamesVerbAndResource runs petrel as a service account
// without any Role: apply must fail before changing anything, naming the
// verb and the resource it was refused.
func TestRBACForbiddenNamesVerbAndResource(t *testing.T) {
	t.Parallel()
	_, c, ns := testBackend(t, gpuCluster)
	ctx := context.Background()
	cs := c.Client(t)
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Enough to read jobs, not to write them.
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "read-jobs"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read-jobs"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc := c.RESTConfig(t)
	rc.Impersonate.UserName = "system:serviceaccount:" + ns + ":reader"
	b, err := New(Config{REST: rc, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "RBAC to take effect", func() (bool, string) {
		_, err := b.Client().BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		return err == nil, fmt.Sprint(err)
	})
	_, err = b.Apply(ctx, parse(t, "testdata/failing-job.yaml"))
	if err == nil || !strings.Contains(err.Error(), `RBAC forbids patch on jobs.batch in namespace "`+ns+`"`) {
		t.Fatalf("apply as a reader: err = %v, want the verb and resource named", err)
	}
	if _, err := b.ListJobs(ctx); err == nil || !strings.Contains(err.Error(), "RBAC forbids list on pods") {
		t.Errorf("list as a reader of jobs only: err = %v, want list on pods named", err)
	}
}

// TestDistributedJobRunsAsAnIndexedGang: numNodes 3 runs as an Indexed
// Job of 3 on the real Job controller: three pods with indices 0–2, worker
// 0 addressable through the headless Service, Complete when all three
// succeed; a failing worker fails the whole Job at once through the
// rendered podFailurePolicy; delete removes the Service too.
func TestDistributedJobRunsAsAnIndexedGang(t *testing.T) {
	t.Parallel()
	b, c, ns := testBackend(t, gpuCluster)
	ctx := context.Background()
	cs := c.Client(t)
	gang := func(name, exit string) []*spec.Document {
		return parseString(t, `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata:
  name: `+name+`
  annotations: {petrel.dev/sim-exit-code: "`+exit+`"}
spec:
  image: busybox:1.37
  command: [sh, -c, "exit `+exit+`"]
  numNodes: 3
  backoffLimit: 4
`)
	}
	if _, err := b.Apply(ctx, gang("gang", "0")); err != nil {
		t.Fatal(err)
	}
	j := waitFinished(t, b, "gang", 3*time.Minute)
	if j.Phase != backend.JobComplete {
		t.Fatalf("gang: %s %+v", j.Phase, j.FinalCondition())
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindJob, "gang")})
	if err != nil {
		t.Fatal(err)
	}
	indices := map[string]bool{}
	for _, p := range pods.Items {
		indices[p.Annotations[batchv1.JobCompletionIndexAnnotation]] = true
		if p.Spec.Subdomain != "gang" || p.Spec.Hostname != "gang-"+p.Annotations[batchv1.JobCompletionIndexAnnotation] {
			t.Errorf("pod %s: hostname %q subdomain %q, want gang-INDEX.gang", p.Name, p.Spec.Hostname, p.Spec.Subdomain)
		}
	}
	if !indices["0"] || !indices["1"] || !indices["2"] {
		t.Errorf("completion indices %v, want 0, 1 and 2", indices)
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, "gang", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("headless service: %v %+v", err, svc)
	}

	if _, err := b.Apply(ctx, gang("gang-fails", "3")); err != nil {
		t.Fatal(err)
	}
	f := waitFinished(t, b, "gang-fails", 3*time.Minute)
	if fc := f.FinalCondition(); f.Phase != backend.JobFailed || fc == nil || fc.Reason != backend.ReasonPodFailurePolicy {
		t.Fatalf("gang-fails: %s %+v, want Failed by the podFailurePolicy at the first failing worker, not retried up to backoffLimit", f.Phase, fc)
	}

	if err := b.Delete(ctx, backend.Ref{Kind: KindJob, Name: "gang"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Get(ctx, "gang", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete the headless service is still there: %v", err)
	}
}

// TestDigitsDDPExampleRunsAsAnIndexedJobOfThree applies
// examples/digits-ddp/train.yaml as written but with numNodes 3: its
// volumes (the data one seeded by an init container), the headless Service
// and an Indexed Job whose three workers have the rendezvous environment
// and the checkpoint volume; the Job controller completes it (kwok ends
// every pod with exit 0: the Python does not run here, the e2e tests run
// it for real). The server-side dry run of the example as written is in
// TestServerSideDryRunAcceptsEveryRenderedObject.
func TestDigitsDDPExampleRunsAsAnIndexedJobOfThree(t *testing.T) {
	t.Parallel()
	b, c, ns := testBackend(t, gpuCluster)
	ctx := context.Background()
	cs := c.Client(t)
	docs := parse(t, "../../examples/digits-ddp/train.yaml")
	var job *v1alpha1.TrainingJob
	for _, d := range docs {
		if j, ok := d.Object.(*v1alpha1.TrainingJob); ok {
			job = j
		}
	}
	if job == nil || job.Spec.Workers() != 2 {
		t.Fatalf("examples/digits-ddp/train.yaml: want a TrainingJob of 2 workers, got %+v", job)
	}
	three := int32(3)
	job.Spec.NumNodes = &three
	provideVolumes(t, cs, ns, docs)
	if _, err := b.Apply(ctx, docs); err != nil {
		t.Fatal(err)
	}
	j := waitFinished(t, b, "digits-ddp", 3*time.Minute)
	if fc := j.FinalCondition(); j.Phase != backend.JobComplete || fc == nil || fc.Reason != backend.ReasonCompletionsReached {
		t.Fatalf("digits-ddp: %s %+v, want Complete", j.Phase, fc)
	}
	kj, err := cs.BatchV1().Jobs(ns).Get(ctx, "digits-ddp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kj.Spec.CompletionMode == nil || *kj.Spec.CompletionMode != batchv1.IndexedCompletion || *kj.Spec.Completions != 3 || *kj.Spec.Parallelism != 3 || kj.Status.Succeeded != 3 {
		t.Errorf("job: completionMode %v completions %v parallelism %v succeeded %d; want Indexed, 3, 3, 3",
			kj.Spec.CompletionMode, kj.Spec.Completions, kj.Spec.Parallelism, kj.Status.Succeeded)
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindJob, "digits-ddp")})
	if err != nil {
		t.Fatal(err)
	}
	indices := map[string]bool{}
	for _, p := range pods.Items {
		idx := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		indices[idx] = true
		if p.Status.Phase != corev1.PodSucceeded || p.Spec.Hostname != "digits-ddp-"+idx || p.Spec.Subdomain != "digits-ddp" {
			t.Errorf("pod %s: phase %s hostname %q subdomain %q", p.Name, p.Status.Phase, p.Spec.Hostname, p.Spec.Subdomain)
		}
		env := map[string]string{}
		for _, e := range p.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		if env["MASTER_ADDR"] != "digits-ddp-0.digits-ddp" || env["MASTER_PORT"] != "29500" || env["WORLD_SIZE"] != "3" || env["PETREL_CHECKPOINT_DIR"] != "/ckpt" || env["DATA_DIR"] != "/data" {
			t.Errorf("pod %s: env %v", p.Name, env)
		}
		claims := map[string]bool{}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claims[v.PersistentVolumeClaim.ClaimName] = true
			}
		}
		if !claims["digits-ddp-data"] || !claims["digits-ddp-ckpt"] {
			t.Errorf("pod %s mounts claims %v, want digits-ddp-data and digits-ddp-ckpt", p.Name, claims)
		}
	}
	if len(indices) != 3 || !indices["0"] || !indices["1"] || !indices["2"] {
		t.Errorf("completion indices %v, want 0, 1 and 2", indices)
	}
	if svc, err := cs.CoreV1().Services(ns).Get(ctx, "digits-ddp", metav1.GetOptions{}); err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless service: %v %+v", err, svc)
	}
}
