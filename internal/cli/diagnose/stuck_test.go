package diagnose

import (
	"context"
	"errors"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

// answers gives one diagnosis per call, the last one again after the end.
type answers struct {
	backend.Backend
	seq [][]backend.Finding
	err error
}

func (a *answers) Diagnose(ctx context.Context, ref backend.Ref) ([]backend.Finding, error) {
	if a.err != nil {
		return nil, a.err
	}
	f := a.seq[0]
	if len(a.seq) > 1 {
		a.seq = a.seq[1:]
	}
	return f, nil
}

func TestStuckCheckStopsOnAPermanentErrorSeenTwice(t *testing.T) {
	claim := backend.Finding{RuleID: "pvc-unbound", Severity: backend.SeverityError, Object: "PersistentVolumeClaim/data", Permanent: true}
	notYet := claim
	notYet.Permanent = false
	image := backend.Finding{RuleID: "image-not-found", Severity: backend.SeverityError, Object: "Pod/p", Permanent: true}
	for _, tc := range []struct {
		name string
		seq  [][]backend.Finding
		stop int // the check (1-based) that stops, 0 = none of the first five
	}{
		{"permanent from the start", [][]backend.Finding{{claim}}, 2},
		{"permanent once the binder has looked", [][]backend.Finding{{notYet}, {notYet}, {claim}}, 4},
		{"gone in between", [][]backend.Finding{{claim}, {}, {claim}, {}, {claim}}, 0},
		{"a different permanent finding each time", [][]backend.Finding{{claim}, {image}, {claim}, {image}, {claim}}, 0},
		{"never permanent", [][]backend.Finding{{notYet}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &StuckCheck{Ref: backend.Ref{Kind: "job", Name: "j"}}
			b := &answers{seq: tc.seq}
			got := 0
			for i := 1; i <= 5 && got == 0; i++ {
				if _, block := s.Check(context.Background(), b); block != nil {
					got = i
				}
			}
			if got != tc.stop {
				t.Errorf("stopped at check %d, want %d", got, tc.stop)
			}
		})
	}
	t.Run("a failed diagnosis never stops", func(t *testing.T) {
		s := &StuckCheck{Ref: backend.Ref{Kind: "job", Name: "j"}}
		b := &answers{err: errors.New("forbidden")}
		for i := 0; i < 3; i++ {
			if _, block := s.Check(context.Background(), b); block != nil {
				t.Fatal("stopped on a failed diagnosis")
			}
		}
	})
}
