package serve

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	clidiagnose "github.com/petrel-dev/petrel/internal/cli/diagnose"
)

// pendingService always reports svc and answers Diagnose with findings.
type pendingService struct {
	backend.Backend
	svc      backend.Service
	findings []backend.Finding
}

func (b *pendingService) GetService(ctx context.Context, name string) (*backend.Service, error) {
	s := b.svc
	return &s, nil
}

func (b *pendingService) Diagnose(ctx context.Context, ref backend.Ref) ([]backend.Finding, error) {
	return b.findings, nil
}

func TestWaitStopsWhenAReplicaCannotStart(t *testing.T) {
	old := clidiagnose.CheckEvery
	clidiagnose.CheckEvery = 20 * time.Millisecond
	t.Cleanup(func() { clidiagnose.CheckEvery = old })
	pull := backend.Finding{RuleID: "image-not-found", Severity: backend.SeverityError, Object: "Pod/echo-5d9f-x2k4p",
		Message: "Image example/echo:v9 does not exist.", Fix: "Fix the image name or tag.", Permanent: true}
	svc := backend.Service{Name: "echo", Generation: 1, DesiredReplicas: 2, Replicas: []backend.Replica{
		{Index: 0, Generation: 1, Phase: "Running", Ready: true},
		{Index: 1, Generation: 1, Phase: "Pending"},
	}}

	b := &pendingService{svc: svc, findings: []backend.Finding{pull}}
	start := time.Now()
	_, err := Wait(context.Background(), b, "echo", time.Minute, 10*time.Millisecond, func(string) {})
	var stuck *StuckError
	if !errors.As(err, &stuck) {
		t.Fatalf("Wait = %v, want a *StuckError", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	if stuck.ExitCode() != 1 || !strings.Contains(err.Error(), "example/echo:v9 does not exist") || stuck.Blocking.RuleID != "image-not-found" {
		t.Errorf("error %v (exit %d)", err, stuck.ExitCode())
	}

	// A passing diagnosis leaves the wait to its timeout.
	b = &pendingService{svc: svc, findings: []backend.Finding{{RuleID: "gpu-busy", Severity: backend.SeverityWarning, Object: "Pod/echo-5d9f-x2k4p"}}}
	_, err = Wait(context.Background(), b, "echo", 300*time.Millisecond, 10*time.Millisecond, func(string) {})
	if errors.As(err, &stuck) || err == nil || !strings.Contains(err.Error(), "is not ready after") {
		t.Errorf("a passing diagnosis: Wait = %v, want the timeout", err)
	}
}

func TestWaitingToStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  backend.Service
		want bool
	}{
		{"a Pending replica", backend.Service{Generation: 2, DesiredReplicas: 1, Replicas: []backend.Replica{{Generation: 2, Phase: "Pending"}}}, true},
		{"fewer replicas than desired", backend.Service{Generation: 2, DesiredReplicas: 2, Replicas: []backend.Replica{{Generation: 2, Phase: "Running", Ready: true}}}, true},
		{"running, not ready yet", backend.Service{Generation: 2, DesiredReplicas: 1, Replicas: []backend.Replica{{Generation: 2, Phase: "Running"}}}, false},
		{"an old generation's replica Pending", backend.Service{Generation: 2, DesiredReplicas: 1, Replicas: []backend.Replica{{Generation: 1, Phase: "Pending"}, {Generation: 2, Phase: "Running"}}}, false},
	} {
		if got := WaitingToStart(&tc.svc); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
