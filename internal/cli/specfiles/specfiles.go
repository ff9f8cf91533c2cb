// Package specfiles reads the -f arguments of apply, train, serve and
// render: files, directories of *.yaml/*.yml, or "-" for standard input.
package specfiles

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/spec"
)

// Read parses every -f argument and validates the documents together;
// a Volume declared identically in several files is kept once
// (spec.MergeIdentical). Every command that takes -f reads through it.
// Errors are spec.ErrorList (every problem with file:line:col) or a read
// error naming the file.
func Read(paths []string, stdin io.Reader) ([]*spec.Document, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no spec given: pass -f FILE (a file, a directory or - for standard input)")
	}
	var docs []*spec.Document
	var errs spec.ErrorList
	add := func(d []*spec.Document, err error) error {
		if list, ok := err.(spec.ErrorList); ok {
			errs = append(errs, list...)
			return nil
		}
		if err != nil {
			return err
		}
		docs = append(docs, d...)
		return nil
	}
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			wd, _ := os.Getwd()
			if err := add(spec.ParseDir("<stdin>", wd, data)); err != nil {
				return nil, err
			}
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read spec %s: %w", p, err)
		}
		files := []string{p}
		if st.IsDir() {
			files = nil
			_ = filepath.WalkDir(p, func(fp string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && (strings.HasSuffix(fp, ".yaml") || strings.HasSuffix(fp, ".yml")) {
					files = append(files, fp)
				}
				return nil
			})
			sort.Strings(files)
		}
		for _, fp := range files {
			data, err := os.ReadFile(fp)
			if err != nil {
				return nil, fmt.Errorf("read spec %s: %w", fp, err)
			}
			dir, _ := filepath.Abs(filepath.Dir(fp))
			d, err := spec.ParseDir(fp, dir, data)
			if err := add(d, err); err != nil {
				return nil, err
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	docs = spec.MergeIdentical(docs)
	if len(docs) == 0 {
		return nil, fmt.Errorf("no objects in %s: a spec holds documents with apiVersion: petrel.dev/v1alpha1 and a kind", strings.Join(paths, ", "))
	}
	return docs, nil
}

// Connect connects to the target and validates docs against the volumes
// it already has (backend.ValidateSpec): what apply, train and serve do
// between reading the files and applying them.
func Connect(ctx context.Context, docs []*spec.Document, connect func(context.Context) (backend.Backend, error)) (backend.Backend, error) {
	b, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := backend.ValidateSpec(ctx, b, docs); err != nil {
		return nil, err
	}
	return b, nil
}

// Single returns the one document of kind in docs. verb names the command
// for the error ("train follows one"); other says what to use instead.
func Single(docs []*spec.Document, kind, paths, verb, other string) (*spec.Document, error) {
	var found *spec.Document
	for _, d := range docs {
		if d.Object.GetKind() != kind {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%s has more than one %s (%s, %s): %s; use petrel apply for several", d.File, kind, found.Object.GetName(), d.Object.GetName(), verb)
		}
		found = d
	}
	if found == nil {
		return nil, fmt.Errorf("no %s in %s: %s", kind, paths, other)
	}
	return found, nil
}
