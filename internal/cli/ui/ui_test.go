package ui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/spec"
)

func TestOpenFlagAcceptsOnlyAutoAlwaysNever(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr bool
	}{
		{nil, false},
		{[]string{"--open", "never"}, false},
		{[]string{"--open", "always"}, false},
		{[]string{"--open", "sometimes"}, true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var got *Options
			f := &factory.Factory{IO: &factory.IOStreams{Out: io.Discard, ErrOut: io.Discard}, Home: t.TempDir()}
			cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && (got == nil || got.Home != f.Home) {
				t.Errorf("options %+v", got)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestKubernetesTargetServesTheDashboardFromTheBackend(t *testing.T) {
	var out syncBuffer
	opts := &Options{IO: &factory.IOStreams{Out: &out, ErrOut: io.Discard}, Home: t.TempDir(), Target: "kubernetes", Open: "never",
		Backend: func(context.Context) (backend.Backend, error) { return clusterJobs{}, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "?token=") {
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	url := strings.TrimSpace(out.String())
	base, tok, _ := strings.Cut(url, "?token=")
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("dashboard at %s, want loopback", base)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"jobs", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "train-on-cluster") || !strings.Contains(string(body), "target: kubernetes") {
		t.Errorf("GET /jobs: %d\n%s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// clusterJobs stands in for the Kubernetes backend: one running job.
type clusterJobs struct{}

func (clusterJobs) Apply(context.Context, []*spec.Document) ([]backend.Applied, error) {
	return nil, fmt.Errorf("read-only")
}
func (clusterJobs) GetJob(_ context.Context, n string) (*backend.Job, error) {
	return nil, fmt.Errorf("job %q: %w", n, backend.ErrNotFound)
}
func (clusterJobs) ListJobs(context.Context) ([]backend.Job, error) {
	return []backend.Job{{Name: "train-on-cluster", Phase: backend.JobRunning, CreationTime: time.Now()}}, nil
}
func (clusterJobs) WatchJob(context.Context, string) (<-chan backend.Job, error) { return nil, nil }
func (clusterJobs) GetService(_ context.Context, n string) (*backend.Service, error) {
	return nil, fmt.Errorf("service %q: %w", n, backend.ErrNotFound)
}
func (clusterJobs) ListServices(context.Context) ([]backend.Service, error)     { return nil, nil }
func (clusterJobs) Scale(context.Context, string, int32) error                  { return nil }
func (clusterJobs) Preempt(context.Context, string) error                       { return nil }
func (clusterJobs) ListVolumes(context.Context) ([]backend.VolumeStatus, error) { return nil, nil }
func (clusterJobs) Logs(context.Context, backend.Ref, backend.LogOptions, io.Writer) error {
	return nil
}
func (clusterJobs) Metrics(context.Context, string) ([]backend.MetricPoint, error) { return nil, nil }
func (clusterJobs) Delete(context.Context, backend.Ref) error                      { return nil }
func (clusterJobs) Diagnose(context.Context, backend.Ref) ([]backend.Finding, error) {
	return nil, nil
}
