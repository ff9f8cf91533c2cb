// Package printers renders command output the way kubectl users expect:
// aligned tables, -o json and -o yaml, ages like "3m12s".
package printers

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// Print writes v as JSON or YAML when format is "json" or "yaml" and
// reports true; for any other format it writes nothing and reports false.
func Print(w io.Writer, format string, v any) (bool, error) {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = w.Write(b)
		return true, err
	}
	return false, nil
}

// CheckFormat validates -o against the formats a command supports.
func CheckFormat(format string, allowed ...string) error {
	var names []string
	for _, a := range allowed {
		if format == a {
			return nil
		}
		if a != "" {
			names = append(names, a)
		}
	}
	return fmt.Errorf("unknown output format %q: valid formats are %s (or none for a table)", format, strings.Join(names, ", "))
}

// Table is a tab-aligned table written on Flush. The tabwriter writes
// cell by cell, so its output goes through a buffer: a 10,000-row table
// is then a few write calls, not 100,000.
type Table struct {
	tw  *tabwriter.Writer
	buf *bufio.Writer
}

// NewTable starts a table with the given column headers.
func NewTable(w io.Writer, headers ...string) *Table {
	t := NewTableNoHeader(w)
	t.Row(toAny(headers)...)
	return t
}

// NewTableNoHeader starts a table without a header row (the rows get -w
// prints under the first listing).
func NewTableNoHeader(w io.Writer) *Table {
	buf := bufio.NewWriterSize(w, 64<<10)
	return &Table{tw: tabwriter.NewWriter(buf, 0, 4, 3, ' ', 0), buf: buf}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Row adds one row; values are formatted with %v.
func (t *Table) Row(cols ...any) {
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprintln(t.tw)
}

// Flush writes the table.
func (t *Table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	return t.buf.Flush()
}

// Age formats a duration as kubectl does: 45s, 3m12s, 5h3m, 2d4h.
func Age(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 10*time.Minute:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// Since is Age(time.Since(t)), or "<none>" for nil.
func Since(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "<none>"
	}
	return Age(time.Since(*t))
}

// ExitError is an error that sets the process exit code (cmd/petrel
// honours ExitCode). Msg may be empty when the command already said why.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// ExitCode implements the exit-code interface cmd/petrel checks.
func (e *ExitError) ExitCode() int { return e.Code }
