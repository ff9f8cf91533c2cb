// Package preempt is `petrel preempt job NAME`.
package preempt

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
)

// Options holds everything preempt needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Name    string
}

// NewCmd returns `petrel preempt`. runF replaces the run function in tests.
func NewCmd(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "preempt job NAME",
		Short: "Stop a job's running pods as a disruption, not a failure",
		Long: `Stop a training job's running pods on purpose, as a node drain or a
higher-priority job would: locally each process gets SIGTERM, the grace
period and the DisruptionTarget condition; on Kubernetes each pod is evicted
through the Eviction API (policy/v1). A podFailurePolicy rule on
DisruptionTarget decides what happens next; distributed jobs ignore it by
default, so the job is not counted as failed and its workers are started
again.`,
		Example: `  petrel preempt job digits-ddp
  petrel preempt job/digits-ddp`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := get.KindName(args, "job", "petrel preempt job NAME")
			if err != nil {
				return err
			}
			opts.Name = name
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	return cmd
}

// Run preempts the job's running pods.
func Run(ctx context.Context, opts *Options) error {
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	if err := b.Preempt(ctx, opts.Name); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "job/%s preempted\n", opts.Name)
	return nil
}
