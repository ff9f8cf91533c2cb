package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
)

// ANSI colours for text output.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
)

// WriteText writes one finding per block:
//
//	FILE:LINE:COL: SEVERITY RULE-ID Kind/name: message
//	    fix: …
//
// with the severity coloured when color is true.
func WriteText(w io.Writer, res *Result, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	for _, f := range res.Findings {
		loc := f.File
		if f.Line > 0 {
			loc = fmt.Sprintf("%s:%d:%d", f.File, f.Line, f.Col)
		}
		sevColor := ansiBlue
		switch f.Severity {
		case backend.SeverityError:
			sevColor = ansiRed
		case backend.SeverityWarning:
			sevColor = ansiYellow
		}
		b.WriteString(paint(ansiBold, loc+":"))
		b.WriteString(" " + paint(sevColor, string(f.Severity)) + " " + paint(ansiDim, f.RuleID) + " ")
		if f.Object != "" {
			b.WriteString(f.Object + ": ")
		}
		b.WriteString(f.Message + "\n")
		if f.Fix != "" {
			b.WriteString("    " + paint(ansiDim, "fix:") + " " + f.Fix + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is one line counting findings, for stderr.
func Summary(res *Result) string {
	e, w, i := res.Count(backend.SeverityError), res.Count(backend.SeverityWarning), res.Count(backend.SeverityInfo)
	what := fmt.Sprintf("%s in %s", plural(res.Objects, "object"), plural(res.Files, "file"))
	if e+w+i == 0 {
		return "no problems found in " + what
	}
	return fmt.Sprintf("%s, %s, %s in %s", plural(e, "error"), plural(w, "warning"), plural(i, "note"), what)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// jsonReport is the -o json document.
type jsonReport struct {
	Findings []backend.Finding `json:"findings"`
	Summary  jsonSummary       `json:"summary"`
}

type jsonSummary struct {
	Files    int  `json:"files"`
	Objects  int  `json:"objects"`
	Errors   int  `json:"errors"`
	Warnings int  `json:"warnings"`
	Infos    int  `json:"infos"`
	Readable bool `json:"readable"`
}

// WriteJSON writes {"findings": [backend.Finding…], "summary": {…}}.
func WriteJSON(w io.Writer, res *Result) error {
	rep := jsonReport{Findings: res.Findings, Summary: jsonSummary{Files: res.Files, Objects: res.Objects,
		Errors: res.Count(backend.SeverityError), Warnings: res.Count(backend.SeverityWarning),
		Infos: res.Count(backend.SeverityInfo), Readable: !res.Unreadable}}
	if rep.Findings == nil {
		rep.Findings = []backend.Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// SARIF 2.1.0 (OASIS), the subset code-scanning UIs read.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifRuleLevel `json:"defaultConfiguration"`
}

type sarifRuleLevel struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical     `json:"physicalLocation"`
	LogicalLocations []sarifLogicalLoc `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
}

type sarifLogicalLoc struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
}

func sarifLevel(s backend.Severity) string {
	switch s {
	case backend.SeverityError:
		return "error"
	case backend.SeverityWarning:
		return "warning"
	}
	return "note"
}

// WriteSARIF writes a SARIF 2.1.0 log with one run: the catalogue as the
// driver's rules and one result per finding (the fix is part of the
// message, as code-scanning UIs show only the message).
func WriteSARIF(w io.Writer, res *Result, rules []*Rule, version string) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "petrel lint",
		InformationURI: "https://github.com/petrel-dev/petrel#lint", Version: version}}}
	index := map[string]int{}
	for i, r := range rules {
		index[r.ID] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{ID: r.ID, Name: ruleName(r.ID),
			ShortDescription: sarifText{r.Summary}, FullDescription: sarifText{r.Why},
			Help:                 sarifText{"Fix: " + r.Fix},
			DefaultConfiguration: sarifRuleLevel{sarifLevel(r.Severity)}})
	}
	run.Results = []sarifResult{}
	for _, f := range res.Findings {
		msg := f.Message
		if f.Fix != "" {
			msg += " Fix: " + f.Fix
		}
		loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(f.File)}}}
		if f.Line > 0 {
			loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.Line, StartColumn: max(f.Col, 1)}
		}
		if f.Object != "" {
			loc.LogicalLocations = []sarifLogicalLoc{{FullyQualifiedName: f.Object}}
		}
		run.Results = append(run.Results, sarifResult{RuleID: f.RuleID, RuleIndex: index[f.RuleID],
			Level: sarifLevel(f.Severity), Message: sarifText{msg}, Locations: []sarifLocation{loc}})
	}
	log := sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// sarifURI makes a relative URI of a file name (forward slashes).
func sarifURI(file string) string {
	if file == StdinName {
		return "stdin"
	}
	return filepath.ToSlash(file)
}

// ruleName turns PTL-GPU-001 into a SARIF rule name (PascalCase, no
// dashes), as the spec recommends.
func ruleName(id string) string {
	var b strings.Builder
	for _, part := range strings.Split(id, "-") {
		if part == "" {
			continue
		}
		b.WriteString(part[:1] + strings.ToLower(part[1:]))
	}
	return b.String()
}
