package rules_test

import (
	"os"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/lint"
	"github.com/petrel-dev/petrel/internal/lint/rules"
)

// TestREADMEListsEveryRule keeps the README's rule table in step with the
// catalogue.
func TestREADMEListsEveryRule(t *testing.T) {
	data, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start, end := strings.Index(text, "<!-- section:lint -->"), strings.Index(text, "<!-- /section:lint -->")
	if start < 0 || end < start {
		t.Fatal("README has no lint section")
	}
	section := text[start:end]
	l, err := lint.New(rules.All(), lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range l.Rules() {
		if !strings.Contains(section, "| `"+r.ID+"` | "+string(r.Severity)+" |") {
			t.Errorf("README's lint table lacks %s (%s)", r.ID, r.Severity)
		}
	}
}
