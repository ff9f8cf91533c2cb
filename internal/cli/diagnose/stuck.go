package diagnose

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
)

// CheckEvery is how often train and serve diagnose a workload that waits to
// start: often enough that a hopeless wait ends within seconds, rarely
// enough that a namespace's objects are not read on every watch event.
var CheckEvery = 5 * time.Second

// StuckCheck decides, across repeated diagnoses of a workload that waits to
// start (a job's pod Pending, a service's replica Pending), whether waiting
// can still help. It stops the wait only on an error the diagnosis marks
// permanent, seen on two consecutive checks, so an object caught halfway
// through its own controller's work (a claim the binder has not looked at
// yet) does not end a wait that would have succeeded.
type StuckCheck struct {
	// Ref is the workload diagnosed: job/NAME or service/NAME.
	Ref  backend.Ref
	prev map[string]bool
}

// blocks reports whether f keeps the workload from starting for good: a
// permanent error on an object its pods need. An HPA that cannot compute
// its metric never scales, but it does not keep replicas from starting.
func blocks(f backend.Finding) bool {
	return f.Permanent && f.Severity == backend.SeverityError &&
		!strings.HasPrefix(f.Object, "HorizontalPodAutoscaler/")
}

// Check diagnoses the workload on b. It returns the whole diagnosis and the
// first finding that blocks the start, or nil when waiting may still help
// (or the diagnosis could not be made: a failed check never stops a wait).
func (s *StuckCheck) Check(ctx context.Context, b backend.Backend) ([]backend.Finding, *backend.Finding) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	findings, err := b.Diagnose(ctx, s.Ref)
	if err != nil {
		return nil, nil
	}
	now := map[string]bool{}
	var hit *backend.Finding
	for i, f := range findings {
		if !blocks(f) {
			continue
		}
		key := f.RuleID + " " + f.Object
		now[key] = true
		if s.prev[key] && hit == nil {
			hit = &findings[i]
		}
	}
	s.prev = now
	return findings, hit
}

// Explain writes why the wait stops: the diagnosis in `petrel diagnose`'s
// text format, after a line naming the workload.
func Explain(w io.Writer, ref backend.Ref, findings []backend.Finding) {
	fmt.Fprintf(w, "petrel: %s/%s cannot start and waiting will not help; diagnosis:\n", ref.Kind, ref.Name)
	WriteText(w, findings, false)
}
