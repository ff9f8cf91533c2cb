// Package lint is the `petrel lint` command: static checks of petrel specs
// and Kubernetes manifests (see internal/lint for the engine and
// internal/lint/rules for the catalogue).
package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/lint"
	"github.com/petrel-dev/petrel/internal/lint/rules"
)

// Exit codes of petrel lint.
const (
	// ExitFindings: at least one finding of severity error.
	ExitFindings = 1
	// ExitUnreadable: some input could not be read (missing path, invalid
	// YAML), or the command line or config file is wrong.
	ExitUnreadable = 2
)

// ExitError ends the command with a given exit code; cmd/petrel/main.go
// honours ExitCode().
type ExitError struct {
	Code int
	Msg  string
}

// Error returns the message main prints after "error: ".
func (e *ExitError) Error() string { return e.Msg }

// ExitCode returns the process exit code.
func (e *ExitError) ExitCode() int { return e.Code }

// Options is everything petrel lint needs.
type Options struct {
	IO *factory.IOStreams
	// Paths are files, directories (recursive *.yaml/*.yml) or "-" (stdin).
	Paths []string
	// Output is text, json or sarif.
	Output string
	// Disable lists rule IDs switched off (repeatable, comma-separated).
	Disable []string
	// Config is the config file; "" reads .petrel-lint.yaml in the current
	// directory when it exists.
	Config string
	// List prints the rule catalogue instead of linting.
	List bool
	// Version goes into SARIF output.
	Version string
}

// NewCmd returns `petrel lint`.
func NewCmd(f *factory.Factory) *cobra.Command { return NewCmdLint(f, nil) }

// NewCmdLint returns `petrel lint`; runF, when not nil, replaces the run
// function (tests of flag parsing).
func NewCmdLint(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "lint PATH... | -",
		Short: "Check petrel specs and Kubernetes manifests for ML-on-Kubernetes mistakes",
		Long: `Check petrel specs and Kubernetes manifests for the mistakes that cost GPU
hours: GPUs asked for the wrong way, Jobs whose retries and clean-up work
against you, training run as a Deployment, model servers without probes,
HPAs that cannot compute their metric, shared ReadWriteOnce claims, missing
memory limits and /dev/shm, floating image tags.

PATH is a file, a directory (read recursively for *.yaml and *.yml) or - for
standard input (helm template ... | petrel lint -). Objects are checked
together: an HPA against its target, a claim against every workload that
mounts it, a quota against the workloads of its namespace.

Kinds checked: ` + strings.Join(lint.KnownKinds(), ", ") + `; and the pod
templates of ` + strings.Join(lint.OperatorKinds(), ", ") + `.

Switch rules off with --disable ID, with a config file (.petrel-lint.yaml in
the current directory, or --config):

  disable: [PTL-IMG-001]
  severity: {PTL-MEM-002: error}

or per object with the annotation petrel.dev/lint-disable: "ID,ID" (or "all").

Exit status: 0 when no finding is an error (warnings and notes allowed),
1 when some finding is an error, 2 when some input cannot be read.`,
		Example: `  petrel lint examples/digits/
  helm template charts/triton | petrel lint -
  petrel lint -o sarif k8s/ > lint.sarif
  petrel lint --list`,
		// Findings are not usage mistakes; main prints the error line.
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			if !opts.List && len(args) == 0 {
				return &ExitError{Code: ExitUnreadable, Msg: "petrel lint needs one or more files or directories, or - for standard input (see petrel lint --help)"}
			}
			switch opts.Output {
			case "text", "json", "sarif":
			default:
				return &ExitError{Code: ExitUnreadable, Msg: fmt.Sprintf("unknown output format %q: use -o text, json or sarif", opts.Output)}
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "text", "output format: text, json or sarif (SARIF 2.1.0)")
	fl.StringSliceVar(&opts.Disable, "disable", nil, "rule IDs to switch off (repeatable, comma-separated)")
	fl.StringVar(&opts.Config, "config", "", "config file (default ./"+lint.ConfigFileName+" when it exists)")
	fl.BoolVar(&opts.List, "list", false, "print the rule catalogue and exit")
	return cmd
}

// Run lints opts.Paths and writes the report to opts.IO.Out (the summary
// line to ErrOut). It returns an *ExitError with code 1 when a finding is an
// error and 2 when an input cannot be read.
func Run(opts *Options) error {
	cfgPath, required := opts.Config, true
	if cfgPath == "" {
		cfgPath, required = lint.ConfigFileName, false
	}
	cfg, err := lint.LoadConfig(cfgPath, required)
	if err != nil {
		return &ExitError{Code: ExitUnreadable, Msg: err.Error()}
	}
	disable := append([]string{}, cfg.Disable...)
	for _, d := range opts.Disable {
		for _, id := range strings.Split(d, ",") {
			if id = strings.TrimSpace(id); id != "" {
				disable = append(disable, id)
			}
		}
	}
	l, err := lint.New(rules.All(), lint.Options{Disable: disable, Severity: cfg.Severity})
	if err != nil {
		return &ExitError{Code: ExitUnreadable, Msg: err.Error()}
	}
	if opts.List {
		return writeCatalogue(opts.IO.Out, l.Rules(), opts.Output)
	}
	srcs, readErrs := lint.ReadSources(opts.Paths, opts.IO.In)
	res := l.Lint(srcs, readErrs...)
	switch opts.Output {
	case "json":
		err = lint.WriteJSON(opts.IO.Out, res)
	case "sarif":
		err = lint.WriteSARIF(opts.IO.Out, res, l.Rules(), opts.Version)
	default:
		err = lint.WriteText(opts.IO.Out, res, opts.IO.ColorEnabled())
		if err == nil {
			fmt.Fprintln(opts.IO.ErrOut, lint.Summary(res))
		}
	}
	if err != nil {
		return fmt.Errorf("write lint report: %w", err)
	}
	switch {
	case res.Unreadable:
		return &ExitError{Code: ExitUnreadable, Msg: "some input could not be read; see the PTL-IN-001 findings"}
	case res.Count(backend.SeverityError) > 0:
		return &ExitError{Code: ExitFindings, Msg: fmt.Sprintf("lint found %d error(s)", res.Count(backend.SeverityError))}
	}
	return nil
}

// catalogueEntry is one rule in `--list -o json`.
type catalogueEntry struct {
	ID       string           `json:"id"`
	Severity backend.Severity `json:"severity"`
	Summary  string           `json:"summary"`
	Why      string           `json:"why"`
	Fix      string           `json:"fix"`
	Kinds    []string         `json:"kinds"`
}

func writeCatalogue(w io.Writer, rs []*lint.Rule, format string) error {
	if format == "json" || format == "sarif" {
		out := make([]catalogueEntry, len(rs))
		for i, r := range rs {
			out[i] = catalogueEntry{r.ID, r.Severity, r.Summary, r.Why, r.Fix, r.Kinds}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%-13s %-8s %s\n", r.ID, r.Severity, r.Summary)
		fmt.Fprintf(&b, "    kinds: %s\n", strings.Join(r.Kinds, ", "))
		fmt.Fprintf(&b, "    why:   %s\n", r.Why)
		fmt.Fprintf(&b, "    fix:   %s\n\n", r.Fix)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
