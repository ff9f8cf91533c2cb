package lint_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/lint"
)

// benchManifests returns at least n documents made of copies of every
// testdata manifest (the cases and the correct set), each copy's object
// names suffixed so cross-object joins (HPA → target, Service → pods,
// claim → mounters) stay within the copy, as in a real repository.
func benchManifests(b *testing.B, n int) ([]lint.Source, int) {
	b.Helper()
	files, _ := filepath.Glob("testdata/cases/*.yaml")
	good, _ := filepath.Glob("testdata/good/*.yaml")
	files = append(files, good...)
	var texts []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		texts = append(texts, string(data))
	}
	names := regexp.MustCompile(`\b(name|claimName): ([a-z0-9-]+)`)
	var srcs []lint.Source
	docs := 0
	for copyN := 0; docs < n; copyN++ {
		for i, text := range texts {
			text = names.ReplaceAllString(text, fmt.Sprintf("$1: $2-%d", copyN))
			srcs = append(srcs, lint.Source{Name: fmt.Sprintf("copy%d/%s", copyN, filepath.Base(files[i])), Data: []byte(text)})
			docs += strings.Count(text, "\nkind: ")
			if strings.HasPrefix(text, "kind: ") {
				docs++
			}
		}
	}
	return srcs, docs
}

// BenchmarkLint1000 lints 1,000 manifests (parse, decode, every rule);
// one op is the whole set.
func BenchmarkLint1000(b *testing.B) {
	srcs, docs := benchManifests(b, 1000)
	l := newLinter(b, lint.Options{})
	b.ReportAllocs()
	b.ResetTimer()
	var objects int
	for b.Loop() {
		objects = l.Lint(srcs).Objects
	}
	b.ReportMetric(float64(objects)*float64(b.N)/b.Elapsed().Seconds(), "manifests/s")
	b.ReportMetric(float64(docs), "documents")
}

// BenchmarkLint1000FromDisk adds reading the files from a directory tree,
// as `petrel lint DIR` does.
func BenchmarkLint1000FromDisk(b *testing.B) {
	srcs, _ := benchManifests(b, 1000)
	dir := b.TempDir()
	for _, s := range srcs {
		path := filepath.Join(dir, s.Name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, s.Data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	l := newLinter(b, lint.Options{})
	b.ReportAllocs()
	b.ResetTimer()
	var objects int
	for b.Loop() {
		got, errs := lint.ReadSources([]string{dir}, nil)
		objects = l.Lint(got, errs...).Objects
	}
	b.ReportMetric(float64(objects)*float64(b.N)/b.Elapsed().Seconds(), "manifests/s")
}
