package ui

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/spec"
)

// fakeBackend is an in-memory backend.Backend for unit tests and
// benchmarks of the pages alone; the browser tests use the real server.
type fakeBackend struct {
	jobs    []backend.Job
	metrics map[string][]backend.MetricPoint
	// logs, when set, writes a workload's log.
	logs func(ctx context.Context, w io.Writer) error
}

var _ backend.Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Apply(context.Context, []*spec.Document) ([]backend.Applied, error) {
	return nil, fmt.Errorf("read-only")
}

func (f *fakeBackend) GetJob(_ context.Context, name string) (*backend.Job, error) {
	for i := range f.jobs {
		if f.jobs[i].Name == name {
			j := f.jobs[i]
			return &j, nil
		}
	}
	return nil, fmt.Errorf("job %q: %w", name, backend.ErrNotFound)
}

func (f *fakeBackend) ListJobs(context.Context) ([]backend.Job, error) {
	return append([]backend.Job(nil), f.jobs...), nil
}

func (f *fakeBackend) WatchJob(context.Context, string) (<-chan backend.Job, error) {
	return nil, fmt.Errorf("not in the fake")
}

func (f *fakeBackend) GetService(_ context.Context, name string) (*backend.Service, error) {
	return nil, fmt.Errorf("service %q: %w", name, backend.ErrNotFound)
}

func (f *fakeBackend) ListServices(context.Context) ([]backend.Service, error) { return nil, nil }
func (f *fakeBackend) Scale(context.Context, string, int32) error              { return fmt.Errorf("read-only") }
func (f *fakeBackend) ListVolumes(context.Context) ([]backend.VolumeStatus, error) {
	return nil, nil
}

func (f *fakeBackend) Logs(ctx context.Context, _ backend.Ref, _ backend.LogOptions, w io.Writer) error {
	if f.logs == nil {
		return nil
	}
	return f.logs(ctx, w)
}

func (f *fakeBackend) Metrics(_ context.Context, name string) ([]backend.MetricPoint, error) {
	return f.metrics[name], nil
}

func (f *fakeBackend) Delete(context.Context, backend.Ref) error { return fmt.Errorf("read-only") }
func (f *fakeBackend) Preempt(context.Context, string) error     { return fmt.Errorf("read-only") }
func (f *fakeBackend) Diagnose(context.Context, backend.Ref) ([]backend.Finding, error) {
	return nil, nil
}

// manyJobs returns n finished jobs with two attempts and metrics each.
func manyJobs(n int) []backend.Job {
	t0 := time.Now().Add(-time.Hour)
	out := make([]backend.Job, n)
	for i := range out {
		start, end := t0.Add(time.Duration(i)*time.Second), t0.Add(time.Duration(i)*time.Second+90*time.Second)
		code := int32(1)
		out[i] = backend.Job{Name: fmt.Sprintf("job-%04d", i), Phase: backend.JobComplete, CreationTime: start, StartTime: &start, CompletionTime: &end,
			Attempts: []backend.Attempt{
				{Index: 0, Name: fmt.Sprintf("job-%04d-0", i), Phase: "Failed", StartTime: &start, EndTime: &start, ExitCode: &code, Reason: backend.ReasonError},
				{Index: 1, Name: fmt.Sprintf("job-%04d-1", i), Phase: "Succeeded", StartTime: &start, EndTime: &end, Reason: backend.ReasonCompleted},
			},
			Conditions:  []backend.Condition{{Type: backend.ConditionComplete, Status: "True", Reason: backend.ReasonCompletionsReached, LastTransitionTime: end}},
			LastMetrics: map[string]float64{"epoch": 10, "loss": 0.123, "accuracy": 0.97}}
	}
	return out
}
