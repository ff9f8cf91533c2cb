package kube

import (
	"context"
	"fmt"

	"github.com/petrel-dev/petrel/internal/backend"
)

// Diagnose explains what is wrong with a workload. Not yet wired to
// internal/diagnose on this target.
func (b *Backend) Diagnose(ctx context.Context, ref backend.Ref) ([]backend.Finding, error) {
	return nil, fmt.Errorf("diagnose is not yet available on the Kubernetes target: run petrel describe %s %s (it shows attempts, reasons and the scheduler's message) or kubectl describe", ref.Kind, ref.Name)
}
