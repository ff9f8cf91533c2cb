// Package scale is `petrel scale service NAME --replicas N`.
package scale

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
)

// Options holds everything scale needs.
type Options struct {
	IO       *factory.IOStreams
	Backend  func(context.Context) (backend.Backend, error)
	Name     string
	Replicas int32
}

// NewCmd returns `petrel scale`. runF replaces the run function in tests.
func NewCmd(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend, Replicas: -1}
	cmd := &cobra.Command{
		Use:   "scale service NAME --replicas N",
		Short: "Set an inference service's replica count",
		Long: `Set the number of replicas of an inference service, as kubectl scale on its
Deployment. Autoscaling is off for the service until its spec is applied
again; scaling down drains the replicas it removes.`,
		Example: `  petrel scale service digits --replicas 3
  petrel scale service/digits --replicas 0`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := get.KindName(args, "service", "petrel scale service NAME --replicas N")
			if err != nil {
				return err
			}
			if opts.Replicas < 0 {
				return fmt.Errorf("--replicas is required and must be 0 or more")
			}
			opts.Name = name
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().Int32Var(&opts.Replicas, "replicas", -1, "the number of replicas")
	return cmd
}

// Run scales the service.
func Run(ctx context.Context, opts *Options) error {
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	if err := b.Scale(ctx, opts.Name, opts.Replicas); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "service/%s scaled to %d\n", opts.Name, opts.Replicas)
	return nil
}
