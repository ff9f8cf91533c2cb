// Package metrics is `petrel metrics NAME`: a job's training metrics
// (Katib's stdout format) as a table, CSV or JSON.
package metrics

import (
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/printers"
)

// Options holds everything metrics needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Name    string
	Output  string
}

// NewCmd returns `petrel metrics`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "metrics NAME",
		Short: "Print a training job's metrics (lines like epoch=3 loss=0.41 accuracy=0.93)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output format: csv, json or yaml (default a table)")
	return cmd
}

// Run prints the metrics.
func Run(ctx context.Context, opts *Options) error {
	if err := printers.CheckFormat(opts.Output, "", "csv", "json", "yaml"); err != nil {
		return err
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	pts, err := b.Metrics(ctx, opts.Name)
	if err != nil {
		return err
	}
	if ok, err := printers.Print(opts.IO.Out, opts.Output, pts); ok {
		return err
	}
	if opts.Output == "csv" {
		w := csv.NewWriter(opts.IO.Out)
		_ = w.Write([]string{"attempt", "time", "name", "value"})
		for _, p := range pts {
			_ = w.Write([]string{strconv.Itoa(p.Attempt), p.Time.UTC().Format(time.RFC3339Nano), p.Name, strconv.FormatFloat(p.Value, 'g', -1, 64)})
		}
		w.Flush()
		return w.Error()
	}
	if len(pts) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "job %s has reported no metrics (print lines such as epoch=1 loss=0.5)\n", opts.Name)
		return nil
	}
	t := printers.NewTable(opts.IO.Out, "ATTEMPT", "TIME", "NAME", "VALUE")
	for _, p := range pts {
		t.Row(p.Attempt, p.Time.Local().Format("15:04:05.000"), p.Name, strconv.FormatFloat(p.Value, 'g', -1, 64))
	}
	return t.Flush()
}
