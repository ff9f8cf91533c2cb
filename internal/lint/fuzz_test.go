package lint_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/petrel-dev/petrel/internal/lint"
)

// FuzzLint feeds arbitrary bytes to the whole linter: whatever the input,
// it must not panic, and every finding must name a rule and a file.
func FuzzLint(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("--- {a: 1}\n--- [\n---\nkind: List\napiVersion: v1\nitems: [1, {kind: Pod}]\n"))
	l := newLinter(f, lint.Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		res := l.Lint([]lint.Source{{Name: "fuzz.yaml", Data: data}})
		for _, fd := range res.Findings {
			if fd.RuleID == "" || fd.File != "fuzz.yaml" || fd.Message == "" {
				t.Fatalf("incomplete finding %+v", fd)
			}
		}
	})
}
