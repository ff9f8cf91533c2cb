// Package get is `petrel get jobs|services|volumes [NAME…]`, with kubectl's
// habits: several names, -l/--selector, --show-labels, -w/--watch, and
// -o wide|json|yaml|name|jsonpath=TEMPLATE.
package get

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/printers"
)

// Options holds everything get needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	// Kind is job, service or volume (NormalizeKind).
	Kind string
	// Names are the objects asked for; empty lists every one.
	Names []string
	// Output is "", wide, json, yaml, name or jsonpath=TEMPLATE.
	Output string
	// Selector is a label selector (-l), as kubectl's: "team=ml,tier!=web".
	Selector string
	// ShowLabels adds a LABELS column.
	ShowLabels bool
	// Watch keeps printing objects as they change (-w), until interrupted.
	Watch bool
	// WatchInterval is how often a watch reads the objects again (the
	// backends have no list-watch); default 1 s.
	WatchInterval time.Duration
}

// NewCmd returns `petrel get`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "get jobs|services|volumes [NAME…] | get KIND/NAME…",
		Short: "List workloads and volumes",
		Example: `  petrel get jobs
  petrel get jobs digits-train other-job -o wide
  petrel get services -w
  petrel get jobs -l app.kubernetes.io/part-of=digits --show-labels
  petrel get job/digits-train -o jsonpath='{.status.phase}'
  petrel get jobs -o name`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: CompleteKindAndNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, names, err := ParseArgs(args)
			if err != nil {
				return err
			}
			opts.Kind, opts.Names = kind, names
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "", "output format: wide, json, yaml, name or jsonpath=TEMPLATE")
	fl.StringVarP(&opts.Selector, "selector", "l", "", "label selector, e.g. -l team=ml,tier!=web")
	fl.BoolVar(&opts.ShowLabels, "show-labels", false, "show each object's labels as the last column")
	fl.BoolVarP(&opts.Watch, "watch", "w", false, "after listing, print objects again as they change (Ctrl-C stops)")
	return cmd
}

// ParseArgs reads `KIND [NAME…]` or `KIND/NAME…` (one kind).
func ParseArgs(args []string) (kind string, names []string, err error) {
	if k, n, ok := strings.Cut(args[0], "/"); ok {
		if kind, err = NormalizeKind(k); err != nil {
			return "", nil, err
		}
		names = append(names, n)
		for _, a := range args[1:] {
			k2, n2, ok := strings.Cut(a, "/")
			if !ok {
				return "", nil, fmt.Errorf("%q: after KIND/NAME every argument is KIND/NAME too", a)
			}
			if k2n, err := NormalizeKind(k2); err != nil || k2n != kind {
				return "", nil, fmt.Errorf("%q: list one kind at a time (get %ss a b)", a, kind)
			}
			names = append(names, n2)
		}
		return kind, names, nil
	}
	if kind, err = NormalizeKind(args[0]); err != nil {
		return "", nil, err
	}
	return kind, args[1:], nil
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

// row is one object as get shows it: its name, its object form (only
// when -o prints objects: making it costs a JSON round trip per object)
// and its table cells.
type row struct {
	name   string
	obj    printers.Object
	labels map[string]string
	cells  []any
}

// Run lists the objects, then, with Watch, prints them again as they change.
func Run(ctx context.Context, opts *Options) error {
	if err := printers.CheckObjectFormat(opts.Output); err != nil {
		return err
	}
	kind, err := NormalizeKind(opts.Kind)
	if err != nil {
		return err
	}
	sel, err := labels.Parse(opts.Selector)
	if err != nil {
		return fmt.Errorf("invalid selector %q: %w", opts.Selector, err)
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	rows, err := fetch(ctx, b, kind, opts, sel)
	if err != nil {
		return err
	}
	single := len(opts.Names) == 1
	if printers.IsObjectFormat(opts.Output) {
		objs := make([]printers.Object, len(rows))
		for i, r := range rows {
			objs[i] = r.obj
		}
		if err := printers.PrintObjects(opts.IO.Out, opts.Output, objs, single && !opts.Watch); err != nil {
			return err
		}
	} else {
		if len(rows) == 0 && !opts.Watch {
			fmt.Fprintf(opts.IO.ErrOut, "No %ss found.\n", kind)
			return nil
		}
		t := printers.NewTable(opts.IO.Out, headersOf(kind, opts)...)
		for _, r := range rows {
			t.Row(r.cells...)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if !opts.Watch {
		return nil
	}
	return watch(ctx, b, kind, opts, sel, rows)
}

// watch reads the objects every WatchInterval and prints each one whose
// row changed (or that appeared), as kubectl get -w prints updates under
// the table. It ends with exit code 130 when ctx is cancelled (Ctrl-C).
func watch(ctx context.Context, b backend.Backend, kind string, opts *Options, sel labels.Selector, rows []row) error {
	every := opts.WatchInterval
	if every <= 0 {
		every = time.Second
	}
	headers := headersOf(kind, opts)
	last := map[string]string{}
	for _, r := range rows {
		last[r.name] = changeKey(headers, r.cells)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return &printers.ExitError{Code: 130}
		case <-tick.C:
		}
		rows, err := fetch(ctx, b, kind, opts, sel)
		if err != nil {
			if ctx.Err() != nil {
				return &printers.ExitError{Code: 130}
			}
			return err
		}
		var changed []row
		for _, r := range rows {
			key := changeKey(headers, r.cells)
			if last[r.name] != key {
				changed = append(changed, r)
				last[r.name] = key
			}
		}
		if len(changed) == 0 {
			continue
		}
		switch {
		case opts.Output == "yaml":
			for _, r := range changed {
				if err := printers.YAMLDocument(opts.IO.Out, r.obj); err != nil {
					return err
				}
			}
		case printers.IsObjectFormat(opts.Output):
			for _, r := range changed {
				if err := printers.PrintObjects(opts.IO.Out, opts.Output, []printers.Object{r.obj}, true); err != nil {
					return err
				}
			}
		default:
			t := printers.NewTableNoHeader(opts.IO.Out)
			for _, r := range changed {
				t.Row(r.cells...)
			}
			if err := t.Flush(); err != nil {
				return err
			}
		}
	}
}

// changeKey is what a watch compares to decide that an object changed: its
// cells without the ones that change with the clock (AGE, DURATION), so a
// row is printed again when its state changes, as kubectl get -w does.
func changeKey(headers []string, cells []any) string {
	var b strings.Builder
	for i, c := range cells {
		if i < len(headers) && (headers[i] == "AGE" || headers[i] == "DURATION") {
			continue
		}
		fmt.Fprintf(&b, "%v\x00", c)
	}
	return b.String()
}

func headersOf(kind string, opts *Options) []string {
	var h []string
	switch kind {
	case "job":
		h = []string{"NAME", "STATUS", "ATTEMPTS", "FAILURES", "DURATION", "AGE"}
		if opts.Output == "wide" {
			h = append(h, "REASON", "GPUS", "METRICS")
		}
	case "service":
		h = []string{"NAME", "READY", "URL", "METRIC", "AGE"}
		if opts.Output == "wide" {
			h = append(h, "REPLICAS", "GENERATION")
		}
	default:
		h = []string{"NAME", "STATUS", "SIZE", "ACCESS MODES", "PATH", "AGE"}
	}
	if opts.ShowLabels {
		h = append(h, "LABELS")
	}
	return h
}

// fetch reads the named objects (all when none are named) and keeps those
// the selector matches.
func fetch(ctx context.Context, b backend.Backend, kind string, opts *Options, sel labels.Selector) ([]row, error) {
	var rows []row
	objects := printers.IsObjectFormat(opts.Output)
	switch kind {
	case "job":
		jobs, err := getJobs(ctx, b, opts.Names, opts.Output == "" || opts.Output == "name")
		if err != nil {
			return nil, err
		}
		for i := range jobs {
			r := row{name: jobs[i].Name, labels: jobs[i].Labels, cells: jobCells(&jobs[i], opts.Output == "wide")}
			if objects {
				r.obj = printers.JobObject(&jobs[i])
			}
			rows = append(rows, r)
		}
	case "service":
		svcs, err := getServices(ctx, b, opts.Names)
		if err != nil {
			return nil, err
		}
		for i := range svcs {
			r := row{name: svcs[i].Name, labels: svcs[i].Labels, cells: serviceCells(&svcs[i], opts.Output == "wide")}
			if objects {
				r.obj = printers.ServiceObject(&svcs[i])
			}
			rows = append(rows, r)
		}
	default:
		vs, err := b.ListVolumes(ctx)
		if err != nil {
			return nil, err
		}
		byName := map[string]*backend.VolumeStatus{}
		for i := range vs {
			byName[vs[i].Name] = &vs[i]
		}
		var chosen []*backend.VolumeStatus
		if len(opts.Names) == 0 {
			for i := range vs {
				chosen = append(chosen, &vs[i])
			}
		}
		for _, n := range opts.Names {
			v, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("volume %q not found", n)
			}
			chosen = append(chosen, v)
		}
		for _, v := range chosen {
			r := row{name: v.Name, cells: volumeCells(v)}
			if objects {
				r.obj = printers.VolumeObject(v)
			}
			rows = append(rows, r)
		}
	}
	out := rows[:0]
	for _, r := range rows {
		if !sel.Matches(labels.Set(r.labels)) {
			continue
		}
		if opts.ShowLabels {
			r.cells = append(r.cells, printers.Labels(r.labels))
		}
		out = append(out, r)
	}
	return out, nil
}

// getJobs reads the named jobs, or every job. tableOnly says that only
// the table's cells (or names) will be printed: a backend that can list
// just those (backend.JobTableLister, Kubernetes) is asked for them.
func getJobs(ctx context.Context, b backend.Backend, names []string, tableOnly bool) ([]backend.Job, error) {
	if len(names) == 0 {
		if tl, ok := b.(backend.JobTableLister); ok && tableOnly {
			return tl.ListJobsForTable(ctx)
		}
		return b.ListJobs(ctx)
	}
	out := make([]backend.Job, 0, len(names))
	for _, n := range names {
		j, err := b.GetJob(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, *j)
	}
	return out, nil
}

func getServices(ctx context.Context, b backend.Backend, names []string) ([]backend.Service, error) {
	if len(names) == 0 {
		return b.ListServices(ctx)
	}
	out := make([]backend.Service, 0, len(names))
	for _, n := range names {
		s, err := b.GetService(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// jobCells are a job's table cells. ATTEMPTS counts the attempts started;
// FAILURES counts those that count against backoffLimit (podFailurePolicy
// Ignore leaves some out), next to the limit, so neither reads like
// kubectl's COMPLETIONS.
func jobCells(j *backend.Job, wide bool) []any {
	dur := "<none>"
	if j.StartTime != nil {
		end := time.Now()
		if j.CompletionTime != nil {
			end = *j.CompletionTime
		}
		dur = printers.Age(end.Sub(*j.StartTime))
	}
	failures := fmt.Sprintf("%d (backoffLimit %d)", j.Failed, j.Spec.EffectiveBackoffLimit())
	row := []any{j.Name, j.Phase, len(j.Attempts), failures, dur, printers.Since(&j.CreationTime)}
	if wide {
		reason := j.Waiting.String()
		if c := j.FinalCondition(); c != nil {
			reason = c.Reason
		}
		gpus := "<none>"
		if n := len(j.Attempts); n > 0 && len(j.Attempts[n-1].GPUs) > 0 {
			gpus = strings.Join(j.Attempts[n-1].GPUs, ",")
		}
		row = append(row, orNone(reason), gpus, metricsSummary(printers.NamedMetrics(j.LastMetrics, j.Spec.Metrics)))
	}
	return row
}

func serviceCells(s *backend.Service, wide bool) []any {
	row := []any{s.Name, fmt.Sprintf("%d/%d", s.ReadyReplicas, s.DesiredReplicas), orNone(s.URL), orNone(s.Metric), printers.Since(&s.CreationTime)}
	if wide {
		row = append(row, len(s.Replicas), s.Generation)
	}
	return row
}

func volumeCells(v *backend.VolumeStatus) []any {
	size := "<none>"
	if v.Spec.Size != nil {
		size = v.Spec.Size.String()
	}
	return []any{v.Name, v.Phase, size, orNone(strings.Join(v.Spec.AccessModes, ",")), v.Path, printers.Since(&v.CreationTime)}
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

// KindName reads a command's "KIND NAME" or "KIND/NAME" arguments for a
// command that works on one kind (want: job, service or volume) and
// returns the name; usage is the command's synopsis for the errors.
func KindName(args []string, want, usage string) (string, error) {
	kind, name := args[0], ""
	if len(args) == 2 {
		name = args[1]
	} else if k, n, ok := strings.Cut(args[0], "/"); ok {
		kind, name = k, n
	} else {
		return "", fmt.Errorf("name required: %s", usage)
	}
	if k, err := NormalizeKind(kind); err != nil || k != want {
		return "", fmt.Errorf("%s works on %ss, not %q: %s", strings.Fields(usage)[1], want, kind, usage)
	}
	return name, nil
}
