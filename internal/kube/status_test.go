package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/petrel-dev/petrel/internal/backend"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func pod(name string, created int, phase corev1.PodPhase, exit *int32, reason string) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(created) * time.Second))},
		Spec:       corev1.PodSpec{NodeName: "node-1"},
		Status:     corev1.PodStatus{Phase: phase},
	}
	cs := corev1.ContainerStatus{Name: ContainerName}
	switch {
	case exit != nil:
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: *exit, Reason: reason,
			StartedAt: metav1.NewTime(p.CreationTimestamp.Add(time.Second)), FinishedAt: metav1.NewTime(p.CreationTimestamp.Add(2 * time.Second))}
	case phase == corev1.PodRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(p.CreationTimestamp.Add(time.Second))}
	case reason != "":
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: "Back-off pulling image"}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	return p
}

func code(c int32) *int32 { return &c }

func jobWith(spec string, conds ...batchv1.JobCondition) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns", CreationTimestamp: metav1.NewTime(t0)}}
	if spec != "" {
		j.Annotations = map[string]string{AnnotationSpec: spec}
	}
	j.Status.Conditions = conds
	return j
}

func cond(t batchv1.JobConditionType, reason string) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: metav1.NewTime(t0.Add(time.Minute))}
}

func TestJobStatus(t *testing.T) {
	unschedulable := pod("j-p", 0, corev1.PodPending, nil, "")
	unschedulable.Spec.NodeName = ""
	unschedulable.Status.ContainerStatuses = nil
	unschedulable.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}}

	retried := jobWith("", cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"), cond(batchv1.JobComplete, "CompletionsReached"))
	retried.Status.Failed = 1
	retried.Status.Succeeded = 1

	cases := []struct {
		name         string
		job          *batchv1.Job
		pods         []corev1.Pod
		phase        backend.JobPhase
		exitCodes    string // attempts' exit codes in order
		waiting      string
		ignored      []bool
		attemptNames string
	}{
		{
			name:  "backoff limit exceeded lists attempts oldest first",
			job:   jobWith(`{"command":["x"],"backoffLimit":2}`, cond(batchv1.JobFailureTarget, "BackoffLimitExceeded"), cond(batchv1.JobFailed, "BackoffLimitExceeded")),
			pods:  []corev1.Pod{pod("j-c", 20, corev1.PodFailed, code(3), "Error"), pod("j-a", 0, corev1.PodFailed, code(3), "Error"), pod("j-b", 10, corev1.PodFailed, code(3), "Error")},
			phase: backend.JobFailed, exitCodes: "3 3 3", attemptNames: "j-a j-b j-c",
		},
		{
			name:  "a failed attempt then success is Complete, not Failed",
			job:   retried,
			pods:  []corev1.Pod{pod("j-a", 0, corev1.PodFailed, code(1), "Error"), pod("j-b", 10, corev1.PodSucceeded, code(0), "Completed")},
			phase: backend.JobComplete, exitCodes: "1 0", attemptNames: "j-a j-b",
		},
		{
			name:  "failure target set while pods terminate is still running",
			job:   jobWith("", cond(batchv1.JobFailureTarget, "PodFailurePolicy")),
			pods:  []corev1.Pod{pod("j-a", 0, corev1.PodFailed, code(42), "Error")},
			phase: backend.JobRunning, exitCodes: "42", attemptNames: "j-a",
		},
		{
			name:  "unschedulable pod says why",
			job:   jobWith(""),
			pods:  []corev1.Pod{unschedulable},
			phase: backend.JobPending, exitCodes: "-", waiting: "unschedulable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu.", attemptNames: "j-p",
		},
		{
			name:  "image pull back-off says why",
			job:   jobWith(""),
			pods:  []corev1.Pod{pod("j-a", 0, corev1.PodPending, nil, "ImagePullBackOff")},
			phase: backend.JobPending, exitCodes: "-", waiting: "ImagePullBackOff: Back-off pulling image", attemptNames: "j-a",
		},
		{
			name:  "running pod",
			job:   jobWith(""),
			pods:  []corev1.Pod{pod("j-a", 0, corev1.PodFailed, code(137), "OOMKilled"), pod("j-b", 5, corev1.PodRunning, nil, "")},
			phase: backend.JobRunning, exitCodes: "137 -", attemptNames: "j-a j-b",
		},
		{
			name: "ignored exit codes are marked",
			job: jobWith(`{"command":["x"],"podFailurePolicy":{"rules":[{"action":"Ignore","onExitCodes":{"operator":"In","values":[143]}},{"action":"FailJob","onExitCodes":{"operator":"NotIn","values":[0]}}]}}`,
				cond(batchv1.JobFailed, "PodFailurePolicy")),
			pods:  []corev1.Pod{pod("j-a", 0, corev1.PodFailed, code(143), "Error"), pod("j-b", 5, corev1.PodFailed, code(2), "Error")},
			phase: backend.JobFailed, exitCodes: "143 2", ignored: []bool{true, false}, attemptNames: "j-a j-b",
		},
		{
			name:  "between attempts the job waits for back-off",
			job:   jobWith(""),
			pods:  []corev1.Pod{pod("j-a", 0, corev1.PodFailed, code(1), "Error")},
			phase: backend.JobPending, exitCodes: "1", waiting: "back-off before attempt 1 (the Job controller delays retries after failures)", attemptNames: "j-a",
		},
	}
	suspended := jobWith("")
	suspended.Spec.Suspend = &[]bool{true}[0]
	cases = append(cases, struct {
		name         string
		job          *batchv1.Job
		pods         []corev1.Pod
		phase        backend.JobPhase
		exitCodes    string
		waiting      string
		ignored      []bool
		attemptNames string
	}{name: "a suspended job is Suspended, as kubectl shows it", job: suspended, phase: backend.JobSuspended, exitCodes: "", waiting: "suspended"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := jobStatus(tc.job, tc.pods)
			if j.Phase != tc.phase {
				t.Errorf("phase = %s, want %s", j.Phase, tc.phase)
			}
			var codes, names []string
			for i, a := range j.Attempts {
				if a.Index != i {
					t.Errorf("attempt %d has index %d", i, a.Index)
				}
				names = append(names, a.Name)
				if a.ExitCode == nil {
					codes = append(codes, "-")
				} else {
					codes = append(codes, fmt.Sprint(*a.ExitCode))
				}
				if tc.ignored != nil && a.Ignored != tc.ignored[i] {
					t.Errorf("attempt %d ignored = %v, want %v", i, a.Ignored, tc.ignored[i])
				}
			}
			if got := strings.Join(codes, " "); got != tc.exitCodes {
				t.Errorf("exit codes = %s, want %s", got, tc.exitCodes)
			}
			if got := strings.Join(names, " "); got != tc.attemptNames {
				t.Errorf("attempts = %s, want %s", got, tc.attemptNames)
			}
			if j.Waiting.String() != tc.waiting {
				t.Errorf("waiting = %q, want %q", j.Waiting, tc.waiting)
			}
			if j.Finished() != (tc.phase == backend.JobComplete || tc.phase == backend.JobFailed) {
				t.Errorf("Finished() = %v for phase %s", j.Finished(), j.Phase)
			}
		})
	}
}

func TestJobStatusAttemptDetails(t *testing.T) {
	p := pod("j-a", 0, corev1.PodFailed, code(137), "OOMKilled")
	j := jobStatus(jobWith(`{"command":["python3"],"backoffLimit":0}`, cond(batchv1.JobFailed, "BackoffLimitExceeded")), []corev1.Pod{p})
	a := j.Attempts[0]
	if a.Reason != "OOMKilled" || a.Node != "node-1" || !a.StartTime.Equal(t0.Add(time.Second)) || !a.EndTime.Equal(t0.Add(2*time.Second)) {
		t.Errorf("attempt = %+v", a)
	}
	if j.Spec.Command[0] != "python3" || *j.Spec.BackoffLimit != 0 {
		t.Errorf("spec from annotation = %+v", j.Spec)
	}
	if fc := j.FinalCondition(); fc == nil || fc.Reason != backend.ReasonBackoffLimitExceeded {
		t.Errorf("final condition = %+v", fc)
	}
	if j.CompletionTime == nil || !j.CompletionTime.Equal(t0.Add(time.Minute)) {
		t.Errorf("completion time of a failed job = %v, want the Failed condition's time", j.CompletionTime)
	}
}

func TestParseMetrics(t *testing.T) {
	log := "2026-01-02T03:04:05.123456789Z loading data\n" +
		"2026-01-02T03:04:06Z epoch=1 loss=0.91 accuracy=0.70\n" +
		"2026-01-02T03:04:07Z epoch=2 loss=4.1e-01 accuracy=0.93\n"
	pts := parseMetrics(2, log)
	if len(pts) != 6 {
		t.Fatalf("points = %+v, want 6", pts)
	}
	if p := pts[4]; p.Name != "loss" || p.Value != 0.41 || p.Attempt != 2 || !p.Time.Equal(time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC)) {
		t.Errorf("point 4 = %+v", p)
	}
}

// apiServer answers every request with one status, as the API server does.
func apiServer(t *testing.T, code int, body string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestErrorsAreOneSentenceWithTheFix(t *testing.T) {
	ctx := context.Background()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	forbidden := apiServer(t, 403, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"jobs.batch \"x\" is forbidden: User \"alice\" cannot get resource \"jobs\" in API group \"batch\" in the namespace \"ml\"","reason":"Forbidden","details":{"name":"x","group":"batch","kind":"jobs"},"code":403}`)
	notFound := apiServer(t, 404, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"jobs.batch \"x\" not found","reason":"NotFound","details":{"name":"x","group":"batch","kind":"jobs"},"code":404}`)

	cases := []struct {
		name, host string
		want       []string
		notFound   bool
	}{
		{"unreachable names the server", closedURL, []string{"cannot reach the Kubernetes API server at " + closedURL, "--kubeconfig/--context"}, false},
		{"forbidden names verb and resource", forbidden.URL, []string{`RBAC forbids get on jobs.batch in namespace "ml"`, `User "alice" cannot get`}, false},
		{"not found wraps ErrNotFound", notFound.URL, []string{`jobs.batch x not found in namespace "ml"`}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(Config{REST: &rest.Config{Host: tc.host}, Namespace: "ml"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.GetJob(ctx, "x")
			if err == nil {
				t.Fatal("GetJob succeeded against a failing server")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
			if errors.Is(err, backend.ErrNotFound) != tc.notFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", !tc.notFound, tc.notFound)
			}
		})
	}
}

func TestNewFollowsKubectlConventions(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "config")
	os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443"}
- name: b
  cluster: {server: "https://b.example:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx-a
  context: {cluster: a, user: u, namespace: team-a}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
`), 0o600)
	cases := []struct {
		name          string
		env           string
		cfg           Config
		host, ns      string
		wantErrSubstr string
	}{
		{"--kubeconfig and the current context's namespace", "", Config{Kubeconfig: kc}, "https://a.example:6443", "team-a", ""},
		{"KUBECONFIG", kc, Config{}, "https://a.example:6443", "team-a", ""},
		{"--context picks another cluster; namespace defaults", "", Config{Kubeconfig: kc, Context: "ctx-b"}, "https://b.example:6443", "default", ""},
		{"-n wins", "", Config{Kubeconfig: kc, Namespace: "other"}, "https://a.example:6443", "other", ""},
		{"unknown context", "", Config{Kubeconfig: kc, Context: "nope"}, "", "", `context "nope" does not exist`},
		{"no configuration at all", filepath.Join(dir, "missing"), Config{}, "", "", "no Kubernetes cluster configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.env)
			t.Setenv("HOME", dir) // no ~/.kube/config
			b, err := New(tc.cfg)
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.rest.Host != tc.host || b.Namespace() != tc.ns {
				t.Errorf("host %s ns %s, want %s %s", b.rest.Host, b.Namespace(), tc.host, tc.ns)
			}
		})
	}
}
