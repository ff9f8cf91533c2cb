package engine

import "context"

// Preempt implements backend.Backend.
func (e *Engine) Preempt(ctx context.Context, name string) error { return e.preemptJob(ctx, name) }
