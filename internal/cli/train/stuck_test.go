package train

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	clidiagnose "github.com/petrel-dev/petrel/internal/cli/diagnose"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/printers"
)

// stuckBackend sends the job states of jobs, then keeps the watch open
// until its context ends; Diagnose answers with findings.
type stuckBackend struct {
	backend.Backend
	jobs     []backend.Job
	findings []backend.Finding

	mu        sync.Mutex
	diagnosed int
}

func (b *stuckBackend) WatchJob(ctx context.Context, name string) (<-chan backend.Job, error) {
	ch := make(chan backend.Job)
	go func() {
		defer close(ch)
		for _, j := range b.jobs {
			select {
			case ch <- j:
			case <-ctx.Done():
				return
			}
		}
		if last := b.jobs[len(b.jobs)-1]; last.Finished() {
			return
		}
		<-ctx.Done()
	}()
	return ch, nil
}

func (b *stuckBackend) Logs(ctx context.Context, ref backend.Ref, opts backend.LogOptions, w io.Writer) error {
	<-ctx.Done()
	return nil
}

func (b *stuckBackend) Diagnose(ctx context.Context, ref backend.Ref) ([]backend.Finding, error) {
	b.mu.Lock()
	b.diagnosed++
	b.mu.Unlock()
	return b.findings, nil
}

func (b *stuckBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.diagnosed
}

func fastChecks(t *testing.T) {
	old := clidiagnose.CheckEvery
	clidiagnose.CheckEvery = 20 * time.Millisecond
	t.Cleanup(func() { clidiagnose.CheckEvery = old })
}

var unknownClass = backend.Finding{RuleID: "pvc-unbound", Severity: backend.SeverityError, Object: "PersistentVolumeClaim/data",
	Message: "Claim data is Pending: its storage class fast does not exist.", Fix: "Set spec.storageClassName to an existing class.", Permanent: true}

func pendingJob(reason backend.WaitingReason) backend.Job {
	return backend.Job{Name: "train", Phase: backend.JobPending, Active: 1,
		Waiting: &backend.Waiting{Reason: reason, Message: "unschedulable: 0/2 nodes are available"}}
}

func TestFollowStopsWhenTheDiagnosisIsPermanent(t *testing.T) {
	fastChecks(t)
	b := &stuckBackend{jobs: []backend.Job{pendingJob(backend.WaitingUnschedulable)}, findings: []backend.Finding{unknownClass}}
	var errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Follow(ctx, &factory.IOStreams{Out: io.Discard, ErrOut: &errOut}, b, "train")
	var ee *printers.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("Follow = %v, want exit code 1\n%s", err, errOut.String())
	}
	if ctx.Err() != nil {
		t.Fatal("Follow waited until the test's deadline")
	}
	if !strings.Contains(ee.Msg, "storage class fast does not exist") || !strings.Contains(ee.Msg, "pvc-unbound") {
		t.Errorf("the reason does not name the finding: %s", ee.Msg)
	}
	for _, want := range []string{"cannot start and waiting will not help", "rule pvc-unbound, PersistentVolumeClaim/data", "fix: Set spec.storageClassName", "(permanent: will not resolve by waiting)"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}

func TestFollowKeepsWaitingWhenWaitingHelps(t *testing.T) {
	fastChecks(t)
	gpusBusy := backend.Finding{RuleID: "gpu-busy", Severity: backend.SeverityWarning, Object: "Job/train", Message: "waits for 2 GPUs"}
	hpa := backend.Finding{RuleID: "hpa-metrics-unavailable", Severity: backend.SeverityError, Object: "HorizontalPodAutoscaler/train", Permanent: true}
	for _, tc := range []struct {
		name     string
		job      backend.Job
		findings []backend.Finding
	}{
		{"GPUs busy (passing)", pendingJob(backend.WaitingForGPUs), []backend.Finding{gpusBusy}},
		{"backing off between attempts", pendingJob(backend.WaitingBackOff), []backend.Finding{unknownClass}},
		{"a permanent finding on an object the pods do not need", pendingJob(backend.WaitingUnschedulable), []backend.Finding{hpa}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &stuckBackend{jobs: []backend.Job{tc.job}, findings: tc.findings}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Follow(ctx, &factory.IOStreams{Out: io.Discard, ErrOut: io.Discard}, b, "train") }()
			// Let several checks run (condition, not a sleep: the count of
			// diagnoses made), then interrupt: only Ctrl-C may end it.
			deadline := time.Now().Add(10 * time.Second)
			for {
				n := b.count()
				if tc.job.Waiting.Reason == backend.WaitingBackOff || n >= 3 || time.Now().After(deadline) {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("Follow stopped on its own: %v", err)
				case <-time.After(10 * time.Millisecond):
				}
			}
			if tc.job.Waiting.Reason == backend.WaitingBackOff {
				// Back-off is not waiting to start: no diagnosis at all.
				select {
				case err := <-done:
					t.Fatalf("Follow stopped on its own: %v", err)
				case <-time.After(200 * time.Millisecond):
				}
				if n := b.count(); n != 0 {
					t.Errorf("diagnosed a job backing off %d times", n)
				}
			} else if n := b.count(); n < 3 {
				t.Fatalf("only %d diagnoses in 10s", n)
			}
			cancel()
			var ee *printers.ExitError
			if err := <-done; !errors.As(err, &ee) || ee.Code != 130 {
				t.Errorf("Follow = %v, want the interrupt (130)", err)
			}
		})
	}
}
