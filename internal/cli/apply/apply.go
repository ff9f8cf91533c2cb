// Package apply is `petrel apply -f FILE`: create or update every object
// in the spec files, as kubectl apply does, without following them.
package apply

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/specfiles"
)

// Options holds everything apply needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Files   []string
}

// NewCmd returns `petrel apply`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update the objects of spec files",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return Run(cmd.Context(), opts) },
	}
	cmd.Flags().StringSliceVarP(&opts.Files, "filename", "f", nil, "spec file, directory or - for standard input")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// Run parses, validates and applies; nothing is applied if any document is invalid.
func Run(ctx context.Context, opts *Options) error {
	docs, err := specfiles.Read(opts.Files, opts.IO.In)
	if err != nil {
		return err
	}
	b, err := specfiles.Connect(ctx, docs, opts.Backend)
	if err != nil {
		return err
	}
	applied, err := b.Apply(ctx, docs)
	for _, a := range applied {
		fmt.Fprintf(opts.IO.Out, "%s/%s %s\n", strings.ToLower(a.Kind), a.Name, a.Action)
	}
	return err
}
