// Package diagnose is the `petrel diagnose` command: root-cause analysis of
// a failing or stuck workload, from the chosen backend's live state or from
// saved Kubernetes state (--from-file). The analysis lives in
// internal/diagnose.
package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/specfiles"
	"github.com/petrel-dev/petrel/internal/diagnose"
)

// Options is everything petrel diagnose needs.
type Options struct {
	IO *factory.IOStreams
	// Backend returns the target's backend; not called with Files.
	Backend func(ctx context.Context) (backend.Backend, error)
	// Ref is the workload; Kind "" (only with Files) analyses everything.
	Ref backend.Ref
	// Files are saved-state dumps (--from-file; "-" is standard input).
	Files []string
	// SpecFiles are petrel spec files (-f, read as every command reads
	// -f): every TrainingJob and InferenceService in them is diagnosed on
	// the live target.
	SpecFiles []string
	// Output is text or json.
	Output string
	// List prints the analyser catalogue instead of diagnosing.
	List bool
}

// NewCmd returns `petrel diagnose`; runF, when not nil, replaces the run
// function (tests of flag parsing).
func NewCmd(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "diagnose [job/NAME | service/NAME | pod/NAME]",
		Short: "Explain why a workload fails or is stuck, with the evidence and the fix",
		Long: `Explain why a workload fails or is stuck: each finding says what is wrong in
one sentence, quotes the status field, event or log line it rests on, gives
the fix, and says when waiting will not help (a pod asking for more GPUs than
any node has is not the same as all GPUs being busy right now).

Without --from-file it asks the target (--target local or kubernetes) about
the workload, or with -f about every workload a spec file declares. With --from-file it reads saved Kubernetes state instead and
needs no cluster: the output of

  kubectl get pods,events,nodes,jobs,deployments,replicasets,hpa,pvc,resourcequotas -o yaml

(a List, multi-document YAML or JSON; repeat --from-file to merge several
files, - reads standard input). Log lines of crashed containers can be added
as documents of kind ContainerLog (see the README). With --from-file the
workload may also be deployment/NAME or daemonset/NAME, or be left out to
analyse everything in the dump.`,
		Example: `  petrel diagnose job/digits-train
  petrel diagnose -f examples/digits/
  petrel diagnose --target kubernetes service/digits -o json
  kubectl get pods,events,nodes,jobs -o yaml > state.yaml
  petrel diagnose job/train --from-file state.yaml
  kubectl get pods,events,nodes -A -o yaml | petrel diagnose --from-file -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output != "text" && opts.Output != "json" {
				return fmt.Errorf("unknown output format %q: use -o text or -o json", opts.Output)
			}
			if len(opts.SpecFiles) > 0 && (len(args) > 0 || len(opts.Files) > 0) {
				return fmt.Errorf("-f names the workloads to diagnose by their spec file: give either -f FILE, a workload (job/NAME) or --from-file DUMP")
			}
			if len(args) == 1 {
				ref, err := ParseRef(args[0], len(opts.Files) > 0)
				if err != nil {
					return err
				}
				opts.Ref = ref
			} else if len(opts.Files) == 0 && len(opts.SpecFiles) == 0 && !opts.List {
				return fmt.Errorf("name the workload to diagnose, e.g. petrel diagnose job/NAME (or pass --from-file to analyse a saved dump)")
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Files, "from-file", nil, "saved state to analyse instead of the live target (kubectl get … -o yaml output; repeatable; - for stdin)")
	fl.StringSliceVarP(&opts.SpecFiles, "filename", "f", nil, "spec file, directory or - whose jobs and services to diagnose")
	fl.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	fl.BoolVar(&opts.List, "list", false, "print the analysers and their rule IDs and exit")
	return cmd
}

// liveKinds are the workload kinds every backend diagnoses, by the names
// people type (kubectl's plural and short forms, petrel's kinds).
var liveKinds = map[string]string{
	"job": "job", "jobs": "job", "trainingjob": "job",
	"service": "service", "services": "service", "svc": "service", "inferenceservice": "service",
	"pod": "pod", "pods": "pod", "po": "pod",
}

// kubeKinds are the Kubernetes objects a cluster (live, --target
// kubernetes) or a saved dump can be diagnosed from as well; the local
// engine has none of them and says so.
var kubeKinds = map[string]string{
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
	"hpa": "hpa", "horizontalpodautoscaler": "hpa", "horizontalpodautoscalers": "hpa",
	"pvc": "pvc", "persistentvolumeclaim": "pvc", "persistentvolumeclaims": "pvc",
}

// ParseRef parses KIND/NAME. Kinds are job, service and pod (with kubectl's
// plural and short forms), and the Kubernetes kinds deployment,
// daemonset, statefulset, hpa and pvc. offline says a saved dump is read
// (every kind applies there too).
func ParseRef(s string, offline bool) (backend.Ref, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || kind == "" || name == "" {
		return backend.Ref{}, fmt.Errorf("%q is not KIND/NAME: write job/NAME, service/NAME or pod/NAME", s)
	}
	lower := strings.ToLower(kind)
	if k, ok := liveKinds[lower]; ok {
		return backend.Ref{Kind: k, Name: name}, nil
	}
	k, ok := kubeKinds[lower]
	if !ok {
		return backend.Ref{}, fmt.Errorf("unknown kind %q in %q: write job/NAME, service/NAME, pod/NAME, deployment/, statefulset/, daemonset/, hpa/ or pvc/NAME", kind, s)
	}
	return backend.Ref{Kind: k, Name: name}, nil
}

// Run diagnoses opts.Ref and writes the findings to opts.IO.Out; loader
// warnings go to ErrOut.
func Run(ctx context.Context, opts *Options) error {
	if opts.List {
		return writeCatalogue(opts.IO.Out)
	}
	if len(opts.SpecFiles) > 0 {
		return runSpecFiles(ctx, opts)
	}
	var findings []backend.Finding
	if len(opts.Files) > 0 {
		if err := refuseSpecs(opts.Files); err != nil {
			return err
		}
		state, warnings, err := diagnose.LoadFiles(opts.Files, opts.IO.In)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			fmt.Fprintln(opts.IO.ErrOut, "warning: "+w)
		}
		findings = diagnose.Analyze(state, opts.Ref)
	} else {
		b, err := opts.Backend(ctx)
		if err != nil {
			return err
		}
		findings, err = live(ctx, b, opts)
		if err != nil {
			return err
		}
	}
	if opts.Output == "json" {
		if findings == nil {
			findings = []backend.Finding{}
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(findings)
	}
	what := "the saved state"
	if opts.Ref.Kind != "" {
		what = opts.Ref.Kind + "/" + opts.Ref.Name
	}
	if len(findings) == 0 {
		fmt.Fprintf(opts.IO.Out, "No problems found in %s.\n", what)
		return nil
	}
	WriteText(opts.IO.Out, findings, opts.IO.ColorEnabled())
	return nil
}

// live diagnoses opts.Ref on b. A pod the backend does not diagnose itself
// (the local engine's attempts and replicas) is diagnosed through the job
// or service that owns it.
func live(ctx context.Context, b backend.Backend, opts *Options) ([]backend.Finding, error) {
	findings, err := b.Diagnose(ctx, opts.Ref)
	if err == nil || opts.Ref.Kind != "pod" || errors.Is(err, backend.ErrNotFound) {
		return findings, withRef(opts.Ref, err)
	}
	if owner, ok := podOwner(ctx, b, opts.Ref.Name); ok {
		fmt.Fprintf(opts.IO.ErrOut, "pod/%s belongs to %s/%s: diagnosing it\n", opts.Ref.Name, owner.Kind, owner.Name)
		findings, err := b.Diagnose(ctx, owner)
		return findings, withRef(owner, err)
	}
	return nil, withRef(opts.Ref, err)
}

// withRef prefixes err with "diagnose KIND/NAME: " unless it already is.
func withRef(ref backend.Ref, err error) error {
	if err == nil {
		return nil
	}
	prefix := fmt.Sprintf("diagnose %s/%s", ref.Kind, ref.Name)
	if strings.HasPrefix(err.Error(), prefix) {
		return err
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// podOwner finds the job attempt or service replica named pod.
func podOwner(ctx context.Context, b backend.Backend, pod string) (backend.Ref, bool) {
	if jobs, err := b.ListJobs(ctx); err == nil {
		for _, j := range jobs {
			for _, a := range j.Attempts {
				if a.Name == pod {
					return backend.Ref{Kind: "job", Name: j.Name}, true
				}
			}
		}
	}
	if svcs, err := b.ListServices(ctx); err == nil {
		for _, s := range svcs {
			for _, r := range s.Replicas {
				if r.Name == pod {
					return backend.Ref{Kind: "service", Name: s.Name}, true
				}
			}
		}
	}
	return backend.Ref{}, false
}

// runSpecFiles diagnoses every job and service the spec files declare.
func runSpecFiles(ctx context.Context, opts *Options) error {
	docs, err := specfiles.Read(opts.SpecFiles, opts.IO.In)
	if err != nil {
		return err
	}
	var refs []backend.Ref
	for _, d := range docs {
		switch d.Object.GetKind() {
		case v1alpha1.KindTrainingJob:
			refs = append(refs, backend.Ref{Kind: "job", Name: d.Object.GetName()})
		case v1alpha1.KindInferenceService:
			refs = append(refs, backend.Ref{Kind: "service", Name: d.Object.GetName()})
		}
	}
	if len(refs) == 0 {
		return fmt.Errorf("%s declares no TrainingJob or InferenceService to diagnose", strings.Join(opts.SpecFiles, ", "))
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	var all []backend.Finding
	for i, ref := range refs {
		findings, err := b.Diagnose(ctx, ref)
		if err != nil {
			return withRef(ref, err)
		}
		if opts.Output == "json" {
			all = append(all, findings...)
			continue
		}
		if i > 0 {
			fmt.Fprintln(opts.IO.Out)
		}
		if len(findings) == 0 {
			fmt.Fprintf(opts.IO.Out, "No problems found in %s/%s.\n", ref.Kind, ref.Name)
			continue
		}
		WriteText(opts.IO.Out, findings, opts.IO.ColorEnabled())
	}
	if opts.Output == "json" {
		if all == nil {
			all = []backend.Finding{}
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	return nil
}

var petrelAPIVersion = regexp.MustCompile(`(?m)^apiVersion:\s*["']?petrel\.dev/`)

// refuseSpecs fails when a --from-file file is a petrel spec rather than
// saved Kubernetes state: analysing it would find nothing and say so.
func refuseSpecs(files []string) error {
	for _, f := range files {
		if f == "-" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue // LoadFiles reports it
		}
		if petrelAPIVersion.Match(data) {
			return fmt.Errorf("%s is a petrel spec, not saved Kubernetes state: diagnose the workloads it declares with petrel diagnose -f %s", f, f)
		}
	}
	return nil
}

// WriteText prints findings for people: severity and the one-sentence
// message, the evidence indented, the fix, and a note on permanent ones.
// color adds ANSI colours to the severity.
func WriteText(w io.Writer, findings []backend.Finding, color bool) {
	for i, f := range findings {
		if i > 0 {
			fmt.Fprintln(w)
		}
		sev := string(f.Severity)
		if color {
			code := map[backend.Severity]string{backend.SeverityError: "31", backend.SeverityWarning: "33", backend.SeverityInfo: "36"}[f.Severity]
			sev = "\x1b[1;" + code + "m" + sev + "\x1b[0m"
		}
		fmt.Fprintf(w, "%s: %s\n", sev, f.Message)
		fmt.Fprintf(w, "  rule %s, %s\n", f.RuleID, f.Object)
		for _, e := range f.Evidence {
			fmt.Fprintf(w, "    %s\n", e)
		}
		if f.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", f.Fix)
		}
		if f.Permanent {
			fmt.Fprintln(w, "  (permanent: will not resolve by waiting)")
		}
	}
}

func writeCatalogue(w io.Writer) error {
	for _, a := range diagnose.Analyzers() {
		fmt.Fprintf(w, "%s: %s\n", a.Name, a.Description)
		for _, r := range a.Rules {
			fmt.Fprintf(w, "  %-32s %s\n", r.ID, r.Summary)
		}
	}
	return nil
}
