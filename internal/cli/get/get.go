// Package get is `petrel get jobs|services|volumes [NAME]`.
package get

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/printers"
)

// Options holds everything get needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Kind    string
	Name    string
	Output  string
}

// NewCmd returns `petrel get`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:       "get jobs|services|volumes [NAME]",
		Short:     "List workloads and volumes",
		Args:      cobra.RangeArgs(1, 2),
		ValidArgs: []string{"jobs", "services", "volumes"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Kind = args[0]
			if len(args) == 2 {
				opts.Name = args[1]
			} else if k, n, ok := strings.Cut(args[0], "/"); ok {
				opts.Kind, opts.Name = k, n // kubectl's KIND/NAME form
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output format: json, yaml or wide")
	return cmd
}

// NormalizeKind maps kubectl-style kind names (job, jobs, svc…) to job,
// service or volume.
func NormalizeKind(k string) (string, error) {
	switch strings.ToLower(k) {
	case "job", "jobs", "trainingjob", "trainingjobs":
		return "job", nil
	case "service", "services", "svc", "inferenceservice", "inferenceservices", "isvc":
		return "service", nil
	case "volume", "volumes", "vol", "pvc":
		return "volume", nil
	}
	return "", fmt.Errorf("unknown kind %q: use jobs, services or volumes", k)
}

// Run lists the objects.
func Run(ctx context.Context, opts *Options) error {
	if err := printers.CheckFormat(opts.Output, "", "json", "yaml", "wide"); err != nil {
		return err
	}
	kind, err := NormalizeKind(opts.Kind)
	if err != nil {
		return err
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	switch kind {
	case "job":
		var jobs []backend.Job
		if opts.Name != "" {
			j, err := b.GetJob(ctx, opts.Name)
			if err != nil {
				return err
			}
			jobs = []backend.Job{*j}
		} else if jobs, err = b.ListJobs(ctx); err != nil {
			return err
		}
		return printJobs(opts, jobs)
	case "service":
		var svcs []backend.Service
		if opts.Name != "" {
			s, err := b.GetService(ctx, opts.Name)
			if err != nil {
				return err
			}
			svcs = []backend.Service{*s}
		} else if svcs, err = b.ListServices(ctx); err != nil {
			return err
		}
		var v any = svcs
		if opts.Name != "" && len(svcs) == 1 {
			v = svcs[0]
		}
		if ok, err := printers.Print(opts.IO.Out, opts.Output, v); ok {
			return err
		}
		t := printers.NewTable(opts.IO.Out, "NAME", "READY", "URL", "METRIC", "AGE")
		for _, s := range svcs {
			t.Row(s.Name, fmt.Sprintf("%d/%d", s.ReadyReplicas, s.DesiredReplicas), orNone(s.URL), orNone(s.Metric), printers.Since(&s.CreationTime))
		}
		return t.Flush()
	default:
		vs, err := b.ListVolumes(ctx)
		if err != nil {
			return err
		}
		if opts.Name != "" {
			var one []backend.VolumeStatus
			for _, v := range vs {
				if v.Name == opts.Name {
					one = append(one, v)
				}
			}
			if len(one) == 0 {
				return fmt.Errorf("volume %q not found", opts.Name)
			}
			vs = one
		}
		if ok, err := printers.Print(opts.IO.Out, opts.Output, vs); ok {
			return err
		}
		t := printers.NewTable(opts.IO.Out, "NAME", "STATUS", "SIZE", "ACCESS MODES", "PATH", "AGE")
		for _, v := range vs {
			size := "<none>"
			if v.Spec.Size != nil {
				size = v.Spec.Size.String()
			}
			modes := strings.Join(v.Spec.AccessModes, ",")
			t.Row(v.Name, v.Phase, size, orNone(modes), v.Path, printers.Since(&v.CreationTime))
		}
		return t.Flush()
	}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func printJobs(opts *Options, jobs []backend.Job) error {
	var v any = jobs
	if opts.Name != "" && len(jobs) == 1 {
		v = jobs[0] // one object for get KIND NAME, as kubectl
	}
	if ok, err := printers.Print(opts.IO.Out, opts.Output, v); ok {
		return err
	}
	headers := []string{"NAME", "STATUS", "ATTEMPTS", "DURATION", "AGE"}
	if opts.Output == "wide" {
		headers = append(headers, "REASON", "GPUS", "METRICS")
	}
	t := printers.NewTable(opts.IO.Out, headers...)
	now := time.Now()
	for _, j := range jobs {
		dur := "<none>"
		if j.StartTime != nil {
			end := now
			if j.CompletionTime != nil {
				end = *j.CompletionTime
			}
			dur = printers.Age(end.Sub(*j.StartTime))
		}
		row := []any{j.Name, j.Phase, fmt.Sprintf("%d/%d", len(j.Attempts), j.Spec.EffectiveBackoffLimit()+1), dur, printers.Since(&j.CreationTime)}
		if opts.Output == "wide" {
			reason := j.Waiting.String()
			if c := j.FinalCondition(); c != nil {
				reason = c.Reason
			}
			gpus := "<none>"
			if n := len(j.Attempts); n > 0 && len(j.Attempts[n-1].GPUs) > 0 {
				gpus = strings.Join(j.Attempts[n-1].GPUs, ",")
			}
			row = append(row, orNone(reason), gpus, metricsSummary(j.LastMetrics))
		}
		t.Row(row...)
	}
	return t.Flush()
}

func metricsSummary(m map[string]float64) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%g", k, m[k])
	}
	return strings.Join(parts, " ")
}
