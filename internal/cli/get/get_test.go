package get

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
)

// labelled answers ListJobs and GetJob with two labelled jobs.
type labelled struct{ backend.Backend }

var jobs = []backend.Job{
	{Name: "a", Phase: backend.JobRunning, Labels: map[string]string{"team": "vision", "tier": "big"}, CreationTime: time.Now()},
	{Name: "b", Phase: backend.JobComplete, Labels: map[string]string{"team": "nlp"}, CreationTime: time.Now(), Failed: 1,
		Attempts: []backend.Attempt{{Index: 0}, {Index: 1}}},
}

func (labelled) ListJobs(context.Context) ([]backend.Job, error) { return jobs, nil }
func (labelled) GetJob(_ context.Context, name string) (*backend.Job, error) {
	for i := range jobs {
		if jobs[i].Name == name {
			return &jobs[i], nil
		}
	}
	return nil, backend.ErrNotFound
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	f := &factory.Factory{IO: &factory.IOStreams{Out: &out, ErrOut: &out}, BackendOverride: labelled{}}
	cmd := NewCmd(f)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("get %v: %v", args, err)
	}
	return out.String()
}

func TestSelectorAndShowLabels(t *testing.T) {
	out := run(t, "jobs", "-l", "team=vision", "--show-labels")
	if !strings.Contains(out, "LABELS") || !strings.Contains(out, "team=vision,tier=big") || strings.Contains(out, "\nb ") {
		t.Errorf("-l team=vision --show-labels:\n%s", out)
	}
	if out := run(t, "jobs", "-l", "team!=vision", "-o", "name"); out != "job/b\n" {
		t.Errorf("-l team!=vision -o name: %q", out)
	}
	if out := run(t, "jobs", "-l", "team=nobody"); !strings.Contains(out, "No jobs found") {
		t.Errorf("no match: %q", out)
	}
}

func TestAttemptsAndFailuresCannotBeReadAsCompletions(t *testing.T) {
	out := run(t, "jobs", "b")
	if !strings.Contains(out, "ATTEMPTS") || !strings.Contains(out, "FAILURES") || !strings.Contains(out, "1 (backoffLimit 6)") || strings.Contains(out, "/") {
		t.Errorf("table:\n%s", out)
	}
}

func TestSeveralNamesJSONPathAndKubernetesShape(t *testing.T) {
	if out := run(t, "jobs", "a", "b", "-o", "jsonpath={.items[*].metadata.name}"); out != "a b\n" {
		t.Errorf("jsonpath over two: %q", out)
	}
	if out := run(t, "job/b", "-o", "jsonpath={.status.phase}"); out != "Complete\n" {
		t.Errorf("jsonpath of one: %q", out)
	}
	y := run(t, "jobs", "a", "-o", "yaml")
	for _, want := range []string{"apiVersion: petrel.dev/v1alpha1", "kind: TrainingJob", "metadata:", "labels:", "team: vision", "status:", "phase: Running"} {
		if !strings.Contains(y, want) {
			t.Errorf("-o yaml lacks %q:\n%s", want, y)
		}
	}
	if y := run(t, "jobs", "-o", "yaml"); !strings.Contains(y, "kind: List") {
		t.Errorf("a list is not a List:\n%s", y)
	}
}

func TestAWatchIgnoresCellsThatChangeWithTheClock(t *testing.T) {
	h := []string{"NAME", "STATUS", "ATTEMPTS", "FAILURES", "DURATION", "AGE"}
	a := changeKey(h, []any{"j", "Running", 1, "0 (backoffLimit 6)", "5s", "6s"})
	if b := changeKey(h, []any{"j", "Running", 1, "0 (backoffLimit 6)", "6s", "7s"}); a != b {
		t.Error("a new age is a change")
	}
	if b := changeKey(h, []any{"j", "Complete", 1, "0 (backoffLimit 6)", "6s", "7s"}); a == b {
		t.Error("a new status is not a change")
	}
}
