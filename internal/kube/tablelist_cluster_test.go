package kube_test

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/kube"
	"github.com/petrel-dev/petrel/internal/spec"
	"github.com/petrel-dev/petrel/test/cluster"
)

// tableCells are the columns of `get jobs` that do not move with the
// clock (NAME, STATUS, ATTEMPTS, FAILURES), one row per job.
func tableCells(out string) []string {
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		cells := regexp.MustCompile(`\s{2,}`).Split(line, -1)
		rows = append(rows, strings.Join(cells[:4], " | "))
	}
	return rows
}

// TestGetJobsTableOnARealCluster: `petrel get jobs` on Kubernetes reads
// the trimmed list (ListJobsForTable); -o wide reads the full one
// (ListJobs). On a namespace with a complete, a failed, an unschedulable
// and a suspended petrel job and a Job petrel did not make, both show the
// same jobs in the same states; -l and --show-labels work on the trimmed
// list; and ListJobsForTable agrees with ListJobs on every field the
// table, -l and -o name read.
func TestGetJobsTableOnARealCluster(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{Nodes: 2, GPUNodes: 1, GPUsPerNode: 2, GPUTaint: true})
	ns := c.Namespace(t, "table")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if r := petrel(t, c, ns, "train", "-f", write("quick.yaml", `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: quick, labels: {team: vision}}
spec: {image: busybox:1.37, command: ["true"], backoffLimit: 1}
`)); r.err != nil {
		t.Fatalf("train quick: %v\n%s", r.err, r.errOut)
	}
	if r := petrel(t, c, ns, "train", "-f", "testdata/failing-job.yaml"); r.err == nil {
		t.Fatalf("train always-fails succeeded:\n%s", r.errOut)
	}
	if r := petrel(t, c, ns, "apply", "-f", write("huge.yaml", `apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: huge}
spec: {image: busybox:1.37, command: ["true"], resources: {cpu: "500"}}
`)); r.err != nil {
		t.Fatalf("apply: %v\n%s", r.err, r.errOut)
	}
	// A petrel Job created suspended, as Kueue makes them.
	docs, err := spec.Parse("later.yaml", []byte(`apiVersion: petrel.dev/v1alpha1
kind: TrainingJob
metadata: {name: later}
spec: {image: busybox:1.37, command: ["true"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := kube.Render(docs, kube.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs := c.Client(t)
	suspend := true
	later := set.Objects[0].(*batchv1.Job)
	later.Spec.Suspend = &suspend
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, later, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "not-petrels"}, Spec: batchv1.JobSpec{Suspend: &suspend,
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox:1.37"}}}}}}
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Wait until the unschedulable job has its pod and the patched one is
	// Suspended, so the two listings see the same state.
	var table, wide result
	deadline := time.Now().Add(2 * time.Minute)
	for {
		table = petrel(t, c, ns, "get", "jobs")
		wide = petrel(t, c, ns, "get", "jobs", "-o", "wide")
		if table.err != nil || wide.err != nil {
			t.Fatalf("get jobs: %v %v\n%s%s", table.err, wide.err, table.errOut, wide.errOut)
		}
		settled := strings.Contains(table.out, "Suspended") && regexp.MustCompile(`huge\s+Pending\s+1 `).MatchString(table.out)
		if settled && reflect.DeepEqual(tableCells(table.out), tableCells(wide.out)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get jobs and get jobs -o wide disagree (or never settled):\n%s\n%s", table.out, wide.out)
		}
		time.Sleep(time.Second)
	}
	want := []string{
		"quick | Complete | 1 | 0 (backoffLimit 1)",
		"always-fails | Failed | 3 | 3 (backoffLimit 2)",
		"huge | Pending | 1 | 0 (backoffLimit 6)",
		"later | Suspended | 0 | 0 (backoffLimit 6)",
	}
	if got := tableCells(table.out); !reflect.DeepEqual(got, want) {
		t.Errorf("get jobs:\n%s\nwant rows %q", table.out, want)
	}

	r := petrel(t, c, ns, "get", "jobs", "-l", "team=vision", "--show-labels")
	if r.err != nil || strings.Count(r.out, "\n") != 2 || !regexp.MustCompile(`quick\s+Complete .*team=vision`).MatchString(r.out) {
		t.Errorf("get jobs -l team=vision --show-labels: %v\n%s", r.err, r.out)
	}
	if r = petrel(t, c, ns, "get", "jobs", "-o", "name"); r.err != nil || r.out != "job/quick\njob/always-fails\njob/huge\njob/later\n" {
		t.Errorf("get jobs -o name: %v\n%q", r.err, r.out)
	}

	b, err := kube.New(kube.Config{Kubeconfig: c.Kubeconfig, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	full, err := b.ListJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := b.ListJobsForTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 4 || len(fast) != len(full) {
		t.Fatalf("ListJobs %d jobs, ListJobsForTable %d, want 4", len(full), len(fast))
	}
	for i := range full {
		if f, g := tableView(full[i]), tableView(fast[i]); !reflect.DeepEqual(f, g) {
			t.Errorf("job %d:\nListJobs         %v\nListJobsForTable %v", i, f, g)
		}
	}
}

// tableView is what `get jobs`' table, -l, --show-labels and -o name read
// of a job.
func tableView(j backend.Job) map[string]any {
	attempts := make([]string, len(j.Attempts))
	for i, a := range j.Attempts {
		attempts[i] = a.Name + "/" + string(a.Phase) + "/" + a.Reason + "/" + a.Node
	}
	return map[string]any{
		"name": j.Name, "namespace": j.Namespace, "labels": j.Labels, "phase": j.Phase, "attempts": attempts,
		"active": j.Active, "succeeded": j.Succeeded, "failed": j.Failed, "backoffLimit": j.Spec.EffectiveBackoffLimit(),
		"start": j.StartTime, "completion": j.CompletionTime, "created": j.CreationTime.UTC(), "conditions": j.Conditions, "waiting": j.Waiting,
	}
}
