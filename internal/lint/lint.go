// Package lint checks petrel specs and Kubernetes manifests for the mistakes
// that cost ML teams GPU hours: GPUs asked for the wrong way, Jobs whose
// retries or clean-up work against them, training written as a Deployment,
// model servers without probes, HPAs that cannot compute their metric,
// ReadWriteOnce claims shared across nodes, missing memory limits and
// /dev/shm, floating image tags.
//
// Inputs are read with yaml.v3 so every finding carries file:line:col, then
// converted to the k8s.io/api types (or api/v1alpha1 for petrel kinds) for
// the rules. Objects are checked together: an HPA against its target, a
// claim against every workload mounting it, a quota against the workloads
// in its namespace. Rules live in internal/lint/rules, one per file.
package lint

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/petrel-dev/petrel/internal/backend"
)

// Rule is one check of the catalogue. ID, Severity, Summary, Why and Fix
// are the catalogue's data: `petrel lint --list`, SARIF rule metadata and
// the README come from them.
type Rule struct {
	// ID is stable across releases: PTL-<AREA>-<NNN>.
	ID string
	// Severity is the default; a finding may be raised or lowered by the
	// rule when the case is clearer, and a config file may override it.
	Severity backend.Severity
	// Summary is what the rule detects, one line.
	Summary string
	// Why says what goes wrong on a cluster, for people who run ML there.
	Why string
	// Fix is the default remedy; findings may give a more specific one.
	Fix string
	// Kinds lists the kinds the rule reads, for the catalogue.
	Kinds []string
	// Check reports findings through the pass. Nil for the input rules,
	// which the decoder reports.
	Check func(p *Pass)
}

// Input rules: problems with the input itself, reported while reading.
var (
	RuleInputUnreadable = &Rule{ID: "PTL-IN-001", Severity: backend.SeverityError,
		Summary: "input cannot be read: missing file, unreadable directory or invalid YAML",
		Why:     "Nothing in an unreadable document can be checked; the command exits 2.",
		Fix:     "fix the path or the YAML syntax",
		Kinds:   []string{"*"}}
	RuleInputNotObject = &Rule{ID: "PTL-IN-002", Severity: backend.SeverityError,
		Summary: "document is not a Kubernetes object (not a mapping, or no apiVersion/kind)",
		Why:     "kubectl and petrel reject such a document; it is often a values file or a fragment passed by mistake.",
		Fix:     "give the document apiVersion, kind and metadata, or leave the file out",
		Kinds:   []string{"*"}}
	RuleInputUnknownKind = &Rule{ID: "PTL-IN-003", Severity: backend.SeverityInfo,
		Summary: "kind is not one lint checks (an error when it looks like a typo of one, or apiVersion does not serve it)",
		Why:     "A misspelt kind or a wrong apiVersion is rejected by the API server; other kinds are simply not checked.",
		Fix:     "correct the kind or apiVersion, or ignore this note for kinds lint does not cover",
		Kinds:   []string{"*"}}
	RuleInputSchema = &Rule{ID: "PTL-IN-004", Severity: backend.SeverityError,
		Summary: "a field's value does not fit the kind's schema (a string where a number belongs, a list where a mapping does)",
		Why:     "The API server rejects the whole object, so none of it is applied.",
		Fix:     "give the field the type the Kubernetes API reference shows",
		Kinds:   []string{"*"}}
	RuleInputPetrelSpec = &Rule{ID: "PTL-IN-005", Severity: backend.SeverityError,
		Summary: "petrel spec is invalid: what petrel apply would reject (unknown field, invalid name or value)",
		Why:     "petrel validates every document before changing anything, so one invalid field stops the whole apply.",
		Fix:     "follow the fix in the message; the field reference is in api/v1alpha1",
		Kinds:   []string{"TrainingJob", "InferenceService", "Volume"}}
)

// InputRules are the PTL-IN rules, part of every catalogue.
var InputRules = []*Rule{RuleInputUnreadable, RuleInputNotObject, RuleInputUnknownKind, RuleInputSchema, RuleInputPetrelSpec}

// Pass is one rule's view of a lint run.
type Pass struct {
	Set      *Set
	rule     *Rule
	severity backend.Severity
	findings *[]backend.Finding
}

// Rule returns the rule being run.
func (p *Pass) Rule() *Rule { return p.rule }

// Report records a finding on o at path with the rule's severity. fix ""
// uses the rule's Fix. A rule switched off by o's annotation reports nothing.
func (p *Pass) Report(o *Object, path Path, fix, format string, args ...any) {
	p.report(o, path, "", fix, fmt.Sprintf(format, args...))
}

// ReportSeverity is Report with a severity of the finding's own (e.g. an
// error where the API server would reject the object). A config override
// of the rule's severity still wins.
func (p *Pass) ReportSeverity(sev backend.Severity, o *Object, path Path, fix, format string, args ...any) {
	p.report(o, path, sev, fix, fmt.Sprintf(format, args...))
}

func (p *Pass) report(o *Object, path Path, sev backend.Severity, fix, msg string) {
	if o.Disabled(p.rule.ID) {
		return
	}
	if sev == "" || p.severity != p.rule.Severity {
		sev = p.severity
	}
	if fix == "" {
		fix = p.rule.Fix
	}
	line, col, exact := o.Pos(path)
	ev := path.String()
	if exact {
		n, _, _ := o.lookup(path)
		if n.Kind == yaml.ScalarNode {
			ev += ": " + truncate(n.Value, 80)
		}
	} else {
		ev += ": not set"
	}
	*p.findings = append(*p.findings, backend.Finding{RuleID: p.rule.ID, Severity: sev, Object: o.Ref(),
		Message: msg, Evidence: []string{ev}, Fix: fix, File: o.File, Line: line, Col: col})
}

// Options configure a Linter.
type Options struct {
	// Disable lists rule IDs that are not run.
	Disable []string
	// Severity overrides rules' severities by ID.
	Severity map[string]backend.Severity
}

// Linter runs a catalogue of rules.
type Linter struct {
	rules    []*Rule
	disabled map[string]bool
	severity map[string]backend.Severity
}

// New returns a Linter over rules (the input rules are added). It fails on
// an unknown rule ID in opts, naming the valid ones, and on a bad severity.
func New(rules []*Rule, opts Options) (*Linter, error) {
	all := append(slices.Clone(InputRules), rules...)
	known := map[string]bool{}
	for _, r := range all {
		if known[r.ID] {
			return nil, fmt.Errorf("lint rule %s is registered twice", r.ID)
		}
		known[r.ID] = true
	}
	l := &Linter{rules: all, disabled: map[string]bool{}, severity: map[string]backend.Severity{}}
	for _, id := range opts.Disable {
		if !known[id] {
			return nil, fmt.Errorf("unknown lint rule %q: run `petrel lint --list` for the rule IDs", id)
		}
		l.disabled[id] = true
	}
	for id, sev := range opts.Severity {
		if !known[id] {
			return nil, fmt.Errorf("unknown lint rule %q in severity overrides: run `petrel lint --list` for the rule IDs", id)
		}
		switch sev {
		case backend.SeverityError, backend.SeverityWarning, backend.SeverityInfo:
		default:
			return nil, fmt.Errorf("severity %q for rule %s is not valid: use error, warning or info", sev, id)
		}
		l.severity[id] = sev
	}
	return l, nil
}

// Rules returns the catalogue, input rules first, then by ID.
func (l *Linter) Rules() []*Rule { return l.rules }

// Result is what one run found.
type Result struct {
	// Findings sorted by file, line, column and rule ID.
	Findings []backend.Finding
	// Files and Objects count what was read.
	Files, Objects int
	// Unreadable is true when some input could not be read (exit code 2).
	Unreadable bool
}

// Count returns the number of findings of severity sev.
func (r *Result) Count(sev backend.Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == sev {
			n++
		}
	}
	return n
}

// Lint reads every source, then runs every enabled rule over all objects
// together. readErrs are inputs that could not be opened; they become
// PTL-IN-001 findings.
func (l *Linter) Lint(srcs []Source, readErrs ...*ReadError) *Result {
	res := &Result{Files: len(srcs)}
	var objs []*Object
	var findings []backend.Finding
	for _, e := range readErrs {
		res.Unreadable = true
		findings = append(findings, backend.Finding{RuleID: RuleInputUnreadable.ID, Severity: l.sev(RuleInputUnreadable),
			Message: "cannot read input: " + e.Err.Error(), Fix: "check the path and its permissions", File: e.Path})
	}
	for _, src := range srcs {
		d := &decoder{src: src}
		d.decode()
		if d.unreadable {
			res.Unreadable = true
		}
		objs = append(objs, d.objects...)
		for _, f := range d.findings {
			if l.disabled[f.RuleID] {
				continue
			}
			if sev, ok := l.severity[f.RuleID]; ok {
				f.Severity = sev
			}
			findings = append(findings, f)
		}
	}
	res.Objects = len(objs)
	set := NewSet(objs)
	for _, r := range l.rules {
		if r.Check == nil || l.disabled[r.ID] {
			continue
		}
		p := &Pass{Set: set, rule: r, severity: l.sev(r), findings: &findings}
		r.Check(p)
	}
	slices.SortStableFunc(findings, func(a, b backend.Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Message, b.Message))
	})
	res.Findings = dropRestated(findings)
	return res
}

// dropRestated removes PTL-IN-005 findings (petrel's own validation) that a
// catalogue rule states about the same field of the same object, with its
// why and fix.
func dropRestated(findings []backend.Finding) []backend.Finding {
	type key struct{ file, object, field string }
	fieldOf := func(f backend.Finding) string {
		if len(f.Evidence) == 0 {
			return ""
		}
		field, _, _ := strings.Cut(f.Evidence[0], ": ")
		return field
	}
	stated := map[key]bool{}
	for _, f := range findings {
		if !strings.HasPrefix(f.RuleID, "PTL-IN-") {
			stated[key{f.File, f.Object, fieldOf(f)}] = true
		}
	}
	out := findings[:0]
	for _, f := range findings {
		if f.RuleID == RuleInputPetrelSpec.ID && stated[key{f.File, f.Object, fieldOf(f)}] {
			continue
		}
		out = append(out, f)
	}
	return out
}

func (l *Linter) sev(r *Rule) backend.Severity {
	if s, ok := l.severity[r.ID]; ok {
		return s
	}
	return r.Severity
}

// SortRules orders a catalogue by area, then number.
func SortRules(rules []*Rule) {
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
}

// Area returns the middle part of a rule ID (GPU in PTL-GPU-001).
func (r *Rule) Area() string {
	parts := strings.Split(r.ID, "-")
	if len(parts) == 3 {
		return parts[1]
	}
	return ""
}
