package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/petrel-dev/petrel/internal/backend"
)

// fullJob is a petrel Job with everything the table does not read filled
// in too (template, annotations, managed fields, other spec fields).
func fullJob(name string, created time.Time, status batchv1.JobStatus, suspend bool) batchv1.Job {
	backoff, par := int32(2), int32(1)
	labels := map[string]string{LabelManagedBy: ManagedBy, LabelKind: KindJob, LabelWorkload: name, "team": "vision"}
	return batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns", UID: "uid-" + "name", ResourceVersion: "42", Labels: labels,
			CreationTimestamp: metav1.NewTime(created),
			Annotations:       map[string]string{AnnotationSpec: `{"command":["python3","train.py"],"backoffLimit":2}`, "other": strings.Repeat("x", 300)},
			ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "petrel", Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}},
		},
		Spec: batchv1.JobSpec{
			Parallelism: &par, BackoffLimit: &backoff, Suspend: &suspend,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
					Name: ContainerName, Image: "ghcr.io/petrel-dev/digits:0.1.0", Command: []string{"python3", "train.py"},
					Env: []corev1.EnvVar{{Name: "EPOCHS", Value: "20"}},
				}}},
			},
		},
		Status: status,
	}
}

func testJobs(now time.Time) []batchv1.Job {
	start := metav1.NewTime(now.Add(-time.Minute))
	done := metav1.NewTime(now.Add(-10 * time.Second))
	return []batchv1.Job{
		fullJob("complete", now.Add(-2*time.Minute), batchv1.JobStatus{StartTime: &start, CompletionTime: &done, Succeeded: 1, Failed: 1,
			Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: done}}}, false),
		fullJob("failed", now.Add(-2*time.Minute), batchv1.JobStatus{StartTime: &start, Failed: 3,
			Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: done}}}, false),
		fullJob("running", now.Add(-time.Minute), batchv1.JobStatus{StartTime: &start, Active: 1}, false),
		fullJob("suspended", now, batchv1.JobStatus{}, true),
	}
}

func testPods(now time.Time) []corev1.Pod {
	pod := func(job, name string, phase corev1.PodPhase, node string, exit *int32) corev1.Pod {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(now.Add(-time.Minute)),
				Labels:      map[string]string{LabelManagedBy: ManagedBy, LabelKind: KindJob, LabelWorkload: job},
				Annotations: map[string]string{"big": strings.Repeat("y", 200)}},
			Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: ContainerName, Image: "img"}}},
			Status: corev1.PodStatus{Phase: phase},
		}
		cs := corev1.ContainerStatus{Name: ContainerName}
		if exit != nil {
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: *exit, Reason: "Error", StartedAt: metav1.NewTime(now.Add(-50 * time.Second)), FinishedAt: metav1.NewTime(now.Add(-40 * time.Second))}
		} else if phase == corev1.PodRunning {
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now.Add(-30 * time.Second))}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		return p
	}
	one, zero := int32(1), int32(0)
	return []corev1.Pod{
		pod("complete", "complete-a", corev1.PodFailed, "node-1", &one),
		pod("complete", "complete-b", corev1.PodSucceeded, "node-1", &zero),
		pod("running", "running-a", corev1.PodRunning, "node-2", nil),
	}
}

// TestTrimKeepsWhatTheTableReads: a Job and a pod cut down to the table's
// fields keep exactly those, and status computed from them is the same.
func TestTrimKeepsWhatTheTableReads(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	for _, full := range testJobs(now) {
		b, err := full.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		cut, err := trim(nil, b, fieldsOfJobTable)
		if err != nil {
			t.Fatal(err)
		}
		var got batchv1.Job
		if err := got.Unmarshal(cut); err != nil {
			t.Fatal(err)
		}
		want := batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: full.Name, Namespace: full.Namespace, Labels: full.Labels, CreationTimestamp: full.CreationTimestamp},
			Spec:       batchv1.JobSpec{BackoffLimit: full.Spec.BackoffLimit, Suspend: full.Spec.Suspend},
			Status:     full.Status,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s trimmed:\n got %+v\nwant %+v", full.Name, got, want)
		}
		if len(cut) > len(b)/3 {
			t.Errorf("%s: trimmed to %d of %d bytes", full.Name, len(cut), len(b))
		}
	}
	for _, p := range testPods(now) {
		b, _ := p.Marshal()
		cut, err := trim(nil, b, fieldsOfPodTable)
		if err != nil {
			t.Fatal(err)
		}
		var got corev1.Pod
		if err := got.Unmarshal(cut); err != nil {
			t.Fatal(err)
		}
		if got.Annotations != nil || len(got.Spec.Containers) != 0 || got.Spec.NodeName != p.Spec.NodeName ||
			!reflect.DeepEqual(got.Status, p.Status) || !reflect.DeepEqual(got.Labels, p.Labels) {
			t.Errorf("pod %s trimmed to %+v", p.Name, got)
		}
	}
}

// fakeAPIServer serves the job and pod lists of testJobs and testPods, in
// protobuf (what the API server answers petrel) or, with asJSON, in JSON.
func fakeAPIServer(t *testing.T, now time.Time, asJSON bool) *Backend {
	t.Helper()
	pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var list runtime.Object
		switch r.URL.Path {
		case "/apis/batch/v1/namespaces/ns/jobs":
			l := &batchv1.JobList{Items: testJobs(now)}
			l.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("JobList"))
			list = l
		case "/api/v1/namespaces/ns/pods":
			l := &corev1.PodList{Items: testPods(now)}
			l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
			list = l
		default:
			http.NotFound(w, r)
			return
		}
		var buf bytes.Buffer
		if asJSON {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(&buf).Encode(list)
		} else {
			w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf")
			if err := pb.Encode(list, &buf); err != nil {
				t.Error(err)
			}
		}
		_, _ = w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	b, err := New(Config{REST: &rest.Config{Host: srv.URL}, Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tableView is what `petrel get jobs`' table (and -l, --show-labels, -o
// name) reads of a job.
func tableView(j backend.Job) map[string]any {
	attempts := make([]string, len(j.Attempts))
	for i, a := range j.Attempts {
		attempts[i] = string(a.Phase) + "/" + a.Reason
	}
	return map[string]any{
		"name": j.Name, "namespace": j.Namespace, "labels": j.Labels, "phase": j.Phase, "attempts": attempts,
		"failed": j.Failed, "backoffLimit": j.Spec.EffectiveBackoffLimit(), "start": j.StartTime, "completion": j.CompletionTime,
		"created": j.CreationTime.UTC(), "conditions": j.Conditions, "waiting": j.Waiting,
	}
}

// TestListJobsForTableAgreesWithListJobs: the streamed, trimmed listing
// and the full one give the same table, from a protobuf answer and from
// a JSON one.
func TestListJobsForTableAgreesWithListJobs(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	for _, asJSON := range []bool{false, true} {
		b := fakeAPIServer(t, now, asJSON)
		ctx := context.Background()
		full, err := b.ListJobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fast, err := b.ListJobsForTable(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(full) != 4 || len(fast) != len(full) {
			t.Fatalf("json %v: ListJobs %d jobs, ListJobsForTable %d", asJSON, len(full), len(fast))
		}
		for i := range full {
			if f, g := tableView(full[i]), tableView(fast[i]); !reflect.DeepEqual(f, g) {
				t.Errorf("json %v: job %d:\nListJobs         %v\nListJobsForTable %v", asJSON, i, f, g)
			}
		}
		if fast[0].Name != "complete" || len(fast[0].Attempts) != 2 || fast[2].Phase != backend.JobRunning || fast[3].Phase != backend.JobSuspended {
			t.Errorf("json %v: unexpected jobs %+v", asJSON, fast)
		}
	}
}
