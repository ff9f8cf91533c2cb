// Package diagnose is the `petrel diagnose` command: root-cause analysis of
// a failing or stuck workload, from the chosen backend's live state or from
// saved Kubernetes state (--from-file). The analysis lives in
// internal/diagnose.
package diagnose

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/diagnose"
)

// Options is everything petrel diagnose needs.
type Options struct {
	IO *factory.IOStreams
	// Backend returns the target's backend; not called with Files.
	Backend func(ctx context.Context) (backend.Backend, error)
	// Ref is the workload; Kind "" (only with Files) analyses everything.
	Ref backend.Ref
	// Files are saved-state dumps ("-" is standard input).
	Files []string
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
the workload. With --from-file it reads saved Kubernetes state instead and
needs no cluster: the output of

  kubectl get pods,events,nodes,jobs,deployments,replicasets,hpa,pvc,resourcequotas -o yaml

(a List, multi-document YAML or JSON; repeat --from-file to merge several
files, - reads standard input). Log lines of crashed containers can be added
as documents of kind ContainerLog (see the README). With --from-file the
workload may also be deployment/NAME or daemonset/NAME, or be left out to
analyse everything in the dump.`,
		Example: `  petrel diagnose job/digits-train
  petrel diagnose --target kubernetes service/digits -o json
  kubectl get pods,events,nodes,jobs -o yaml > state.yaml
  petrel diagnose job/train --from-file state.yaml
  kubectl get pods,events,nodes -A -o yaml | petrel diagnose --from-file -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output != "text" && opts.Output != "json" {
				return fmt.Errorf("unknown output format %q: use -o text or -o json", opts.Output)
			}
			if len(args) == 1 {
				ref, err := ParseRef(args[0], len(opts.Files) > 0)
				if err != nil {
					return err
				}
				opts.Ref = ref
			} else if len(opts.Files) == 0 && !opts.List {
				return fmt.Errorf("name the workload to diagnose, e.g. petrel diagnose job/NAME (or pass --from-file to analyse a saved dump)")
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&opts.Files, "from-file", "f", nil, "saved state to analyse instead of the live target (kubectl get … -o yaml output; repeatable; - for stdin)")
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

// offlineKinds are the Kubernetes workload kinds a saved dump can be
// scoped to as well.
var offlineKinds = map[string]string{
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
}

// ParseRef parses KIND/NAME. Kinds are job, service and pod (with kubectl's
// plural and short forms); offline, deployment, daemonset and statefulset
// are accepted too.
func ParseRef(s string, offline bool) (backend.Ref, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || kind == "" || name == "" {
		return backend.Ref{}, fmt.Errorf("%q is not KIND/NAME: write job/NAME, service/NAME or pod/NAME", s)
	}
	lower := strings.ToLower(kind)
	if k, ok := liveKinds[lower]; ok {
		return backend.Ref{Kind: k, Name: name}, nil
	}
	k, ok := offlineKinds[lower]
	if !ok {
		return backend.Ref{}, fmt.Errorf("unknown kind %q in %q: write job/NAME, service/NAME or pod/NAME", kind, s)
	}
	if !offline {
		return backend.Ref{}, fmt.Errorf("%s/%s: a live target diagnoses job/NAME, service/NAME or pod/NAME; %s works with --from-file", kind, name, kind)
	}
	return backend.Ref{Kind: k, Name: name}, nil
}

// Run diagnoses opts.Ref and writes the findings to opts.IO.Out; loader
// warnings go to ErrOut.
func Run(ctx context.Context, opts *Options) error {
	if opts.List {
		return writeCatalogue(opts.IO.Out)
	}
	var findings []backend.Finding
	if len(opts.Files) > 0 {
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
		findings, err = b.Diagnose(ctx, opts.Ref)
		if err != nil {
			return fmt.Errorf("diagnose %s/%s: %w", opts.Ref.Kind, opts.Ref.Name, err)
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
