package kube

import (
	"context"
	"errors"
	"fmt"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/diagnose"
)

// Diagnose explains what is wrong with a workload: internal/diagnose reads
// the live state (the Job or Deployment, its pods, events, nodes, claims,
// quotas, HPA, crashed containers' last log lines) and runs its analysers.
func (b *Backend) Diagnose(ctx context.Context, ref backend.Ref) ([]backend.Finding, error) {
	ns := b.nsFor(ref.Kind, ref.Name)
	f, err := diagnose.Diagnose(ctx, b.cs, ns, ref)
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("%s %q not found in namespace %q: %w", ref.Kind, ref.Name, ns, backend.ErrNotFound)
		}
		return nil, b.explain(err, "get", "the state of "+ref.Kind+" "+ref.Name, ns, "")
	}
	return f, nil
}
