// Package describe is `petrel describe job|service|volume NAME`: the workload's
// spec summary, conditions, attempts or replicas with exit codes and
// reasons, GPU allocation, last metrics, events, and the diagnosis of a
// failed or stuck workload.
package describe

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
	"github.com/petrel-dev/petrel/internal/cli/printers"
)

// Options holds everything describe needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Kind    string
	Name    string
}

// NewCmd returns `petrel describe`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	return &cobra.Command{
		Use:               "describe job|service|volume NAME",
		ValidArgsFunction: get.CompleteKindAndNames(f),
		Short:             "Show a workload in detail, with a diagnosis when it failed or is stuck",
		Args:              cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Kind, opts.Name = args[0], ""
			if len(args) == 2 {
				opts.Name = args[1]
			} else if k, n, ok := strings.Cut(args[0], "/"); ok {
				opts.Kind, opts.Name = k, n
			} else {
				return fmt.Errorf("name required: petrel describe job NAME")
			}
			return Run(cmd.Context(), opts)
		},
	}
}

// Run prints the description.
func Run(ctx context.Context, opts *Options) error {
	kind, err := get.NormalizeKind(opts.Kind)
	if err != nil {
		return err
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	w := opts.IO.Out
	switch kind {
	case "job":
		j, err := b.GetJob(ctx, opts.Name)
		if err != nil {
			return err
		}
		Job(w, j)
		if j.Phase == backend.JobFailed || j.Waiting != nil {
			if fs, err := b.Diagnose(ctx, backend.Ref{Kind: "job", Name: j.Name}); err == nil {
				Findings(w, fs)
			}
		}
	case "service":
		s, err := b.GetService(ctx, opts.Name)
		if err != nil {
			return err
		}
		Service(w, s)
		if s.ReadyReplicas < s.DesiredReplicas {
			if fs, err := b.Diagnose(ctx, backend.Ref{Kind: "service", Name: s.Name}); err == nil {
				Findings(w, fs)
			}
		}
	default:
		vs, err := b.ListVolumes(ctx)
		if err != nil {
			return err
		}
		for i := range vs {
			if vs[i].Name == opts.Name {
				var users []string
				if jobs, err := b.ListJobs(ctx); err == nil {
					for _, j := range jobs {
						users = append(users, mounters("job", j.Name, j.Spec.Volumes, opts.Name)...)
					}
				}
				if svcs, err := b.ListServices(ctx); err == nil {
					for _, s := range svcs {
						users = append(users, mounters("service", s.Name, s.Spec.Volumes, opts.Name)...)
					}
				}
				Volume(w, &vs[i], users)
				return nil
			}
		}
		return fmt.Errorf("volume %q %w", opts.Name, backend.ErrNotFound)
	}
	return nil
}

// Env renders environment variables with secret values masked.
func Env(env []v1alpha1.EnvVar) string {
	parts := make([]string, len(env))
	for i, e := range v1alpha1.MaskSecrets(env) {
		parts[i] = e.Name + "=" + e.Value
	}
	return strings.Join(parts, " ")
}

func ts(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "<none>"
	}
	return t.Local().Format(time.RFC3339)
}

// Job writes a job's description.
func Job(w io.Writer, j *backend.Job) {
	s := j.Spec
	fmt.Fprintf(w, "Name:           %s\n", j.Name)
	if j.Namespace != "" {
		fmt.Fprintf(w, "Namespace:      %s\n", j.Namespace)
	}
	if len(j.Labels) > 0 {
		fmt.Fprintf(w, "Labels:         %s\n", printers.Labels(j.Labels))
	}
	fmt.Fprintf(w, "Status:         %s\n", j.Phase)
	if c := j.FinalCondition(); c != nil && c.Reason != "" {
		fmt.Fprintf(w, "Reason:         %s: %s\n", c.Reason, c.Message)
	}
	if j.Waiting != nil {
		fmt.Fprintf(w, "Waiting:        %s\n", j.Waiting)
	}
	fmt.Fprintf(w, "Created:        %s\nStarted:        %s\nCompleted:      %s\n", ts(&j.CreationTime), ts(j.StartTime), ts(j.CompletionTime))
	fmt.Fprintf(w, "Image:          %s\n", orNone(s.Image))
	fmt.Fprintf(w, "Command:        %q\n", append(append([]string(nil), s.Command...), s.Args...))
	if len(s.Env) > 0 {
		fmt.Fprintf(w, "Env:            %s\n", Env(s.Env))
	}
	if len(j.ShellEnv) > 0 {
		keys := make([]string, 0, len(j.ShellEnv))
		for k := range j.ShellEnv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			label := "Shell env:      "
			if i > 0 {
				label = "                "
			}
			fmt.Fprintf(w, "%s%s=%s\n", label, k, j.ShellEnv[k])
		}
	}
	fmt.Fprintf(w, "Resources:      %s\n", Resources(s.Resources))
	for _, m := range s.Volumes {
		ro := ""
		if m.ReadOnly {
			ro = " (read-only)"
		}
		env := ""
		if m.PathEnv != "" {
			env = " as $(" + m.PathEnv + ")"
		}
		fmt.Fprintf(w, "Volume:         %s at %s%s%s\n", m.Name, m.MountPath, env, ro)
	}
	deadline := "<none>"
	if s.ActiveDeadlineSeconds != nil {
		deadline = fmt.Sprintf("%ds", *s.ActiveDeadlineSeconds)
	}
	fmt.Fprintf(w, "Backoff limit:  %d\nDeadline:       %s\n", s.EffectiveBackoffLimit(), deadline)
	if p := s.PodFailurePolicy; p != nil {
		for i, r := range p.Rules {
			if r.OnExitCodes != nil {
				fmt.Fprintf(w, "Failure rule %d: %s on exit codes %s %v\n", i, r.Action, r.OnExitCodes.Operator, r.OnExitCodes.Values)
			}
			if len(r.OnPodConditions) > 0 {
				conds := make([]string, len(r.OnPodConditions))
				for k, c := range r.OnPodConditions {
					st := c.Status
					if st == "" {
						st = "True" // batch/v1 default
					}
					conds[k] = c.Type + "=" + st
				}
				fmt.Fprintf(w, "Failure rule %d: %s on pod conditions %s\n", i, r.Action, strings.Join(conds, ", "))
			}
		}
	}
	fmt.Fprintf(w, "Attempts:       %d active, %d succeeded, %d failed\n", j.Active, j.Succeeded, j.Failed)
	for _, n := range j.Notes {
		fmt.Fprintf(w, "Note:           %s\n", n)
	}
	if len(j.Conditions) > 0 {
		fmt.Fprintln(w, "\nConditions:")
		t := printers.NewTable(w, "  TYPE", "STATUS", "REASON", "LAST TRANSITION", "MESSAGE")
		for _, c := range j.Conditions {
			t.Row("  "+c.Type, c.Status, orNone(c.Reason), ts(&c.LastTransitionTime), c.Message)
		}
		t.Flush()
	}
	if len(j.Attempts) > 0 {
		fmt.Fprintln(w, "\nAttempts:")
		t := printers.NewTable(w, "  #", "NAME", "PHASE", "EXIT CODE", "REASON", "STARTED", "DURATION", "GPUS", "MESSAGE")
		for _, a := range j.Attempts {
			code := "<none>"
			if a.ExitCode != nil {
				code = fmt.Sprint(*a.ExitCode)
			}
			dur := "<none>"
			if a.StartTime != nil {
				end := time.Now()
				if a.EndTime != nil {
					end = *a.EndTime
				}
				dur = printers.Age(end.Sub(*a.StartTime))
			}
			reason := orNone(a.Reason)
			if a.Ignored {
				reason += " (ignored by podFailurePolicy)"
			}
			if a.DisruptionTarget {
				reason += " (DisruptionTarget)"
			}
			t.Row(fmt.Sprintf("  %d", a.Index), a.Name, a.Phase, code, reason, ts(a.StartTime), dur, orNone(strings.Join(a.GPUs, ",")), a.Message)
			// A distributed attempt's workers, under it: which one failed
			// first and which were stopped because of it.
			for _, wk := range a.Workers {
				code, dur := "<none>", "<none>"
				if wk.ExitCode != nil {
					code = fmt.Sprint(*wk.ExitCode)
				}
				if a.StartTime != nil && wk.EndTime != nil {
					dur = printers.Age(wk.EndTime.Sub(*a.StartTime))
				}
				msg, lead := wk.Message, ""
				if a.FailedWorker != nil && *a.FailedWorker == wk.Index {
					lead = "failed first"
				} else if a.FailedWorker != nil && wk.Reason != backend.ReasonCompleted {
					lead = fmt.Sprintf("stopped because worker %d failed", *a.FailedWorker)
				}
				if lead != "" && msg != "" {
					msg = lead + " (" + msg + ")"
				} else if lead != "" {
					msg = lead
				}
				t.Row("", fmt.Sprintf("  worker %d", wk.Index), wk.Phase, code, orNone(wk.Reason), "", dur, orNone(strings.Join(wk.GPUs, ",")), msg)
			}
		}
		t.Flush()
	}
	if last := printers.NamedMetrics(j.LastMetrics, s.Metrics); len(last) > 0 {
		keys := make([]string, 0, len(last))
		for k := range last {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintln(w, "\nLast metrics:")
		for _, k := range keys {
			fmt.Fprintf(w, "  %s = %g\n", k, last[k])
		}
	}
}

// mounters returns "KIND/NAME at PATH" when mounts mount volume.
func mounters(kind, name string, mounts []v1alpha1.VolumeMount, volume string) []string {
	var out []string
	for _, m := range mounts {
		if m.Name == volume {
			ro := ""
			if m.ReadOnly {
				ro = " (read-only)"
			}
			out = append(out, fmt.Sprintf("%s/%s at %s%s", kind, name, m.MountPath, ro))
		}
	}
	return out
}

// Volume writes a volume's description: its spec, where it lives, and the
// jobs and services that mount it.
func Volume(w io.Writer, v *backend.VolumeStatus, users []string) {
	size := "<none>"
	if v.Spec.Size != nil {
		size = v.Spec.Size.String()
	}
	modes := strings.Join(v.Spec.AccessModes, ",")
	fmt.Fprintf(w, "Name:           %s\nStatus:         %s\nSize:           %s\nAccess modes:   %s\n", v.Name, v.Phase, size, orNone(modes))
	if v.Spec.StorageClassName != nil {
		fmt.Fprintf(w, "Storage class:  %s\n", *v.Spec.StorageClassName)
	}
	if v.Spec.Source != "" {
		fmt.Fprintf(w, "Source:         %s (seeds the volume when first created)\n", v.Spec.Source)
	}
	fmt.Fprintf(w, "Path:           %s\nCreated:        %s\n", orNone(v.Path), ts(&v.CreationTime))
	if len(users) == 0 {
		fmt.Fprintln(w, "Mounted by:     <none>")
	}
	for i, u := range users {
		label := "Mounted by:     "
		if i > 0 {
			label = "                "
		}
		fmt.Fprintf(w, "%s%s\n", label, u)
	}
}

// Resources renders resource requests as cpu=… memory=… nvidia.com/gpu=N.
func Resources(r v1alpha1.Resources) string {
	res := []string{}
	if r.CPU != nil {
		res = append(res, "cpu="+r.CPU.String())
	}
	if r.Memory != nil {
		res = append(res, "memory="+r.Memory.String())
	}
	if r.GPU > 0 {
		res = append(res, fmt.Sprintf("%s=%d", r.GPUName(), r.GPU))
	}
	return orNone(strings.Join(res, " "))
}

// Probe renders a probe as kubectl describe does: http-get PATH
// delay=… timeout=… period=… #success=… #failure=…, with the kubelet's
// defaults for fields left at 0.
func Probe(p *v1alpha1.Probe) string {
	if p == nil {
		return "<none>"
	}
	or := func(v, def int32) int32 {
		if v == 0 {
			return def
		}
		return v
	}
	port := ""
	if p.HTTPGet.Port != 0 {
		port = fmt.Sprintf(" port %d", p.HTTPGet.Port)
	}
	return fmt.Sprintf("http-get %s%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", p.HTTPGet.Path, port,
		p.InitialDelaySeconds, or(p.TimeoutSeconds, 1), or(p.PeriodSeconds, 10), or(p.SuccessThreshold, 1), or(p.FailureThreshold, 3))
}

// Service writes a service's description.
func Service(w io.Writer, s *backend.Service) {
	fmt.Fprintf(w, "Name:       %s\n", s.Name)
	if s.Namespace != "" {
		fmt.Fprintf(w, "Namespace:  %s\n", s.Namespace)
	}
	if len(s.Labels) > 0 {
		fmt.Fprintf(w, "Labels:     %s\n", printers.Labels(s.Labels))
	}
	fmt.Fprintf(w, "URL:        %s\nReplicas:   %d ready / %d desired\n", orNone(s.URL), s.ReadyReplicas, s.DesiredReplicas)
	sp := s.Spec
	if a := sp.Autoscaling; a != nil {
		minR := int32(1)
		if a.MinReplicas != nil {
			minR = *a.MinReplicas
		}
		target := "<none>"
		switch {
		case a.Target.CPUUtilization != nil:
			target = fmt.Sprintf("cpu %d%% of the request", *a.Target.CPUUtilization)
		case a.Target.Concurrency != nil:
			target = fmt.Sprintf("%d in-flight requests per replica", *a.Target.Concurrency)
		}
		fmt.Fprintf(w, "Autoscaling: min %d, max %d replicas, target %s\n", minR, a.MaxReplicas, target)
	} else if sp.Replicas != nil {
		fmt.Fprintf(w, "Autoscaling: off (spec.replicas %d)\n", *sp.Replicas)
	} else {
		fmt.Fprintln(w, "Autoscaling: off")
	}
	if s.Metric != "" {
		fmt.Fprintf(w, "Metric:     %s\n", s.Metric)
	}
	if sp.Image != "" {
		fmt.Fprintf(w, "Image:      %s\n", sp.Image)
	}
	fmt.Fprintf(w, "Command:    %q\n", append(append([]string(nil), sp.Command...), sp.Args...))
	fmt.Fprintf(w, "Port:       %d\n", sp.Port)
	if len(sp.Env) > 0 {
		fmt.Fprintf(w, "Env:        %s\n", Env(sp.Env))
	}
	fmt.Fprintf(w, "Resources:  %s\n", Resources(sp.Resources))
	for _, m := range sp.Volumes {
		ro := ""
		if m.ReadOnly {
			ro = " (read-only)"
		}
		fmt.Fprintf(w, "Volume:     %s at %s%s\n", m.Name, m.MountPath, ro)
	}
	fmt.Fprintf(w, "Startup:    %s\nReadiness:  %s\nLiveness:   %s\n", Probe(sp.StartupProbe), Probe(sp.ReadinessProbe), Probe(sp.LivenessProbe))
	if st := sp.Strategy; st != nil {
		fmt.Fprintf(w, "Strategy:   RollingUpdate maxSurge=%s maxUnavailable=%s\n", orNone(st.MaxSurge), orNone(st.MaxUnavailable))
	}
	fmt.Fprintf(w, "Generation: %d\n", s.Generation)
	if len(s.Replicas) > 0 {
		fmt.Fprintln(w, "\nReplicas:")
		t := printers.NewTable(w, "  #", "NAME", "PHASE", "READY", "PORT", "RESTARTS", "LAST REASON", "IN-FLIGHT", "AGE")
		for _, r := range s.Replicas {
			t.Row(fmt.Sprintf("  %d", r.Index), r.Name, r.Phase, r.Ready, r.Port, r.Restarts, orNone(r.LastReason), r.InFlight, printers.Since(r.StartTime))
		}
		t.Flush()
	}
	if len(s.Events) > 0 {
		fmt.Fprintln(w, "\nEvents:")
		t := printers.NewTable(w, "  AGE", "TYPE", "REASON", "MESSAGE")
		for _, e := range s.Events {
			t.Row("  "+printers.Since(&e.Time), e.Type, e.Reason, e.Message)
		}
		t.Flush()
	}
}

// Findings writes a diagnosis.
func Findings(w io.Writer, fs []backend.Finding) {
	if len(fs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nDiagnosis:")
	for _, f := range fs {
		perm := ""
		if f.Permanent {
			perm = " (permanent: waiting will not help)"
		}
		fmt.Fprintf(w, "  [%s] %s%s\n", f.Severity, f.Message, perm)
		for _, e := range f.Evidence {
			fmt.Fprintf(w, "      evidence: %s\n", e)
		}
		if f.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", f.Fix)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
