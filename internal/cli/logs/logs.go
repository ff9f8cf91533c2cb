// Package logs is `petrel logs NAME|job/NAME|service/NAME`.
package logs

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
	"github.com/petrel-dev/petrel/internal/cli/printers"
)

// Options holds everything logs needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Ref     backend.Ref
	Opts    backend.LogOptions
}

// NewCmd returns `petrel logs`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "logs NAME | job/NAME | service/NAME",
		Short: "Print a workload's output (every attempt, or one with --attempt)",
		Example: `  petrel logs digits-train -f
  petrel logs job/digits-train --attempt 0
  petrel logs service/digits --replica 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = backend.Ref{Kind: "job", Name: args[0]}
			if k, n, ok := strings.Cut(args[0], "/"); ok {
				kind, err := get.NormalizeKind(k)
				if err != nil {
					return err
				}
				opts.Ref = backend.Ref{Kind: kind, Name: n}
			}
			return opts.run(cmd.Context())
		},
	}
	cmd.Flags().BoolVarP(&opts.Opts.Follow, "follow", "f", false, "stream until the workload ends")
	cmd.Flags().IntVar(&opts.Opts.Attempt, "attempt", -1, "only this attempt (0-based); default every attempt, prefixed")
	cmd.Flags().IntVar(&opts.Opts.Replica, "replica", -1, "only this replica of a service")
	return cmd
}

func (o *Options) run(ctx context.Context) error {
	b, err := o.Backend(ctx)
	if err != nil {
		return err
	}
	err = b.Logs(ctx, o.Ref, o.Opts, o.IO.Out)
	if ctx.Err() != nil {
		// Ctrl-C on logs -f is how one stops following: no error message,
		// and the status a shell gives a command ended by SIGINT.
		return &printers.ExitError{Code: 130}
	}
	return err
}
