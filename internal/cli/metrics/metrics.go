// Package metrics is `petrel metrics NAME`: a job's training metrics
// (Katib's stdout format) as a table with one row per reported step and a
// column per metric, or as CSV, JSON or YAML.
package metrics

import (
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
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
		Short: "Print a training job's metrics, one row per step (lines like epoch=3 loss=0.41 accuracy=0.93)",
		Long: `metrics prints the NAME=number pairs a job's attempts printed (Katib's stdout
format), one row per output line that reported metrics, one column per metric.
When the spec lists spec.metrics, only those names are metrics; otherwise every
NAME=number pair is (CUDA_VISIBLE_DEVICES=0 included).`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: get.CompleteRef(f, "job"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output format: csv, json or yaml (default a table)")
	return cmd
}

// Step is one row: the metrics an attempt reported on one output line.
type Step struct {
	Attempt int                `json:"attempt"`
	Metrics map[string]float64 `json:"metrics"`
}

// Steps groups points into rows. Points arrive in the order printed, a
// line's pairs together; a name that the current row already has starts a
// new row (the next line). Only names in allowed count when it is not
// empty. It returns the rows and the metric names in first-seen order.
func Steps(pts []backend.MetricPoint, allowed []string) ([]Step, []string) {
	var steps []Step
	var names []string
	for _, p := range pts {
		if len(allowed) > 0 && !slices.Contains(allowed, p.Name) {
			continue
		}
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
		n := len(steps)
		if n == 0 || steps[n-1].Attempt != p.Attempt || hasKey(steps[n-1].Metrics, p.Name) {
			steps = append(steps, Step{Attempt: p.Attempt, Metrics: map[string]float64{}})
			n++
		}
		steps[n-1].Metrics[p.Name] = p.Value
	}
	if len(allowed) > 0 {
		// The spec's order, for the names that were reported.
		var ordered []string
		for _, a := range allowed {
			if slices.Contains(names, a) {
				ordered = append(ordered, a)
			}
		}
		names = ordered
	}
	return steps, names
}

func hasKey(m map[string]float64, k string) bool {
	_, ok := m[k]
	return ok
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
	j, err := b.GetJob(ctx, opts.Name)
	if err != nil {
		return err
	}
	pts, err := b.Metrics(ctx, opts.Name)
	if err != nil {
		return err
	}
	steps, names := Steps(pts, j.Spec.Metrics)
	if steps == nil {
		steps = []Step{}
	}
	if ok, err := printers.Print(opts.IO.Out, opts.Output, steps); ok {
		return err
	}
	if len(steps) == 0 && opts.Output == "" {
		hint := "print lines such as epoch=1 loss=0.5"
		if len(j.Spec.Metrics) > 0 {
			hint = fmt.Sprintf("spec.metrics lists %v", j.Spec.Metrics)
		}
		fmt.Fprintf(opts.IO.ErrOut, "job %s has reported no metrics (%s)\n", opts.Name, hint)
		return nil
	}
	header := append([]string{"ATTEMPT"}, names...)
	cells := func(s Step) []string {
		row := []string{strconv.Itoa(s.Attempt)}
		for _, n := range names {
			v, ok := s.Metrics[n]
			if !ok {
				row = append(row, "")
				continue
			}
			row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
		}
		return row
	}
	if opts.Output == "csv" {
		w := csv.NewWriter(opts.IO.Out)
		_ = w.Write(header)
		for _, s := range steps {
			_ = w.Write(cells(s))
		}
		w.Flush()
		return w.Error()
	}
	t := printers.NewTable(opts.IO.Out, header...)
	for _, s := range steps {
		row := cells(s)
		anys := make([]any, len(row))
		for i, c := range row {
			if c == "" {
				c = "-"
			}
			anys[i] = c
		}
		t.Row(anys...)
	}
	return t.Flush()
}
