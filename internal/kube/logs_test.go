package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/petrel-dev/petrel/internal/backend"
)

// logServer is an HTTP server answering the three API calls Logs and
// Metrics make (get job, list pods, pod log) the way the API server does,
// with two attempts whose logs hold Katib metric lines. The kwok nodes of
// the cluster tests serve no logs, so this covers the log path.
func logServer(t *testing.T) *Backend {
	t.Helper()
	job := batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: "train", Namespace: "ns", Labels: Selector(KindJob, "train")},
		Status:     batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobComplete, "CompletionsReached")}},
	}
	pods := corev1.PodList{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"},
		Items:    []corev1.Pod{pod("train-b", 10, corev1.PodSucceeded, code(0), "Completed"), pod("train-a", 0, corev1.PodFailed, code(1), "Error")},
	}
	logs := map[string]string{
		"train-a": "2026-01-02T03:04:05Z epoch=1 loss=0.9\n2026-01-02T03:04:06Z Traceback: boom\n",
		"train-b": "2026-01-02T03:05:05Z epoch=1 loss=0.8\n2026-01-02T03:05:06Z epoch=2 loss=0.5 accuracy=0.9",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /apis/batch/v1/namespaces/ns/jobs/train", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(job)
	})
	mux.HandleFunc("GET /api/v1/namespaces/ns/pods", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("labelSelector"); got != SelectorString(KindJob, "train") {
			http.Error(w, "unexpected selector "+got, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(pods)
	})
	mux.HandleFunc("GET /api/v1/namespaces/ns/pods/{pod}/log", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("container") != ContainerName {
			http.Error(w, "container not named", http.StatusBadRequest)
			return
		}
		l := logs[r.PathValue("pod")]
		if r.URL.Query().Get("timestamps") != "true" {
			var lines []string
			for _, line := range strings.Split(l, "\n") {
				_, rest, _ := strings.Cut(line, " ")
				lines = append(lines, rest)
			}
			l = strings.Join(lines, "\n")
		}
		fmt.Fprint(w, l)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b, err := New(Config{REST: &rest.Config{Host: srv.URL}, Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLogsSelectAttemptsByCreationOrder(t *testing.T) {
	b := logServer(t)
	ctx := context.Background()
	cases := []struct {
		name    string
		attempt int
		want    string
		wantErr string
	}{
		{"every attempt with prefixes", -1, "[attempt 0] epoch=1 loss=0.9\n[attempt 0] Traceback: boom\n[attempt 1] epoch=1 loss=0.8\n[attempt 1] epoch=2 loss=0.5 accuracy=0.9\n", ""},
		{"the first pod created is attempt 0", 0, "epoch=1 loss=0.9\nTraceback: boom\n", ""},
		{"attempt 1", 1, "epoch=1 loss=0.8\nepoch=2 loss=0.5 accuracy=0.9\n", ""},
		{"out of range names the attempts", 2, "", "job train has 2 attempts (0–1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := b.Logs(ctx, backend.Ref{Kind: KindJob, Name: "train"}, backend.LogOptions{Attempt: tc.attempt, Replica: -1}, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("logs =\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestMetricsFromPodLogs(t *testing.T) {
	b := logServer(t)
	pts, err := b.Metrics(context.Background(), "train")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pts {
		got = append(got, fmt.Sprintf("%d:%s=%g@%s", p.Attempt, p.Name, p.Value, p.Time.Format(time.TimeOnly)))
	}
	want := "0:epoch=1@03:04:05 0:loss=0.9@03:04:05 1:epoch=1@03:05:05 1:loss=0.8@03:05:05 1:epoch=2@03:05:06 1:loss=0.5@03:05:06 1:accuracy=0.9@03:05:06"
	if strings.Join(got, " ") != want {
		t.Errorf("metrics =\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
}
