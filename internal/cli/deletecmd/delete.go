// Package deletecmd is `petrel delete job|service|volume NAME`.
package deletecmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
)

// NewCmd returns `petrel delete`.
func NewCmd(f *factory.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "delete job|service|volume NAME",
		Short: "Delete a workload (stopping its processes or pods) or a volume",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kindArg, name := args[0], ""
			if len(args) == 2 {
				name = args[1]
			} else if k, n, ok := strings.Cut(args[0], "/"); ok {
				kindArg, name = k, n
			} else {
				return fmt.Errorf("name required: petrel delete job NAME")
			}
			kind, err := get.NormalizeKind(kindArg)
			if err != nil {
				return err
			}
			return run(cmd.Context(), f, backend.Ref{Kind: kind, Name: name})
		},
	}
}

func run(ctx context.Context, f *factory.Factory, ref backend.Ref) error {
	b, err := f.Backend(ctx)
	if err != nil {
		return err
	}
	if err := b.Delete(ctx, ref); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.Out, "%s/%s deleted\n", ref.Kind, ref.Name)
	return nil
}
