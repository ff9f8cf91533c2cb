package lint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// StdinName is the file name findings carry for input read from standard
// input ("-" on the command line).
const StdinName = "<stdin>"

// Source is one input file's bytes. Name is what findings report as File.
type Source struct {
	Name string
	Data []byte
}

// ReadError is an input that could not be read at all (a missing path, a
// permission problem). Lint reports it as a PTL-IN-001 finding and the
// command exits 2.
type ReadError struct {
	Path string
	Err  error
}

// Error reads "read PATH: reason".
func (e *ReadError) Error() string { return fmt.Sprintf("read %s: %v", e.Path, e.Err) }

// ReadSources turns command-line arguments into sources: "-" reads stdin,
// a directory is walked recursively for *.yaml and *.yml files (in lexical
// order, skipping hidden directories such as .git), anything else is read as
// one file whatever its extension. Paths that cannot be read are returned as
// ReadErrors; the others are still read.
func ReadSources(paths []string, stdin io.Reader) ([]Source, []*ReadError) {
	var srcs []Source
	var errs []*ReadError
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				errs = append(errs, &ReadError{Path: StdinName, Err: err})
				continue
			}
			srcs = append(srcs, Source{Name: StdinName, Data: data})
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, &ReadError{Path: p, Err: unwrapPathError(err)})
			continue
		}
		if !fi.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, &ReadError{Path: p, Err: unwrapPathError(err)})
				continue
			}
			srcs = append(srcs, Source{Name: p, Data: data})
			continue
		}
		found := 0
		walkErr := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, &ReadError{Path: path, Err: unwrapPathError(err)})
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			ext := strings.ToLower(filepath.Ext(path))
			if ext != ".yaml" && ext != ".yml" {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, &ReadError{Path: path, Err: unwrapPathError(err)})
				return nil
			}
			found++
			srcs = append(srcs, Source{Name: path, Data: data})
			return nil
		})
		if walkErr != nil {
			errs = append(errs, &ReadError{Path: p, Err: walkErr})
		} else if found == 0 {
			errs = append(errs, &ReadError{Path: p, Err: fmt.Errorf("directory holds no *.yaml or *.yml files")})
		}
	}
	return srcs, errs
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// chunk is one YAML document's text and the 0-based line it starts on.
type chunk struct {
	data       []byte
	lineOffset int
}

// splitDocuments cuts a multi-document YAML stream at "---" lines, so that
// a syntax error in one document does not hide the documents after it
// (yaml.v3's decoder cannot continue past one). Each chunk keeps its line
// offset so positions stay those of the whole file.
func splitDocuments(data []byte) []chunk {
	var out []chunk
	start, startLine, line := 0, 0, 0
	for i := 0; i < len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		next := len(data)
		if end >= 0 {
			next = i + end + 1
		}
		l := data[i:next]
		if isSeparator(l) {
			out = append(out, chunk{data: data[start:i], lineOffset: startLine})
			// The separator starts the next chunk: yaml.v3 reads "---" as a
			// document start, and content after it ("--- {a: 1}") keeps
			// its columns.
			start = i
			startLine = line
		}
		line++
		i = next
	}
	out = append(out, chunk{data: data[start:], lineOffset: startLine})
	return out
}

func isSeparator(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("---")) {
		return false
	}
	rest := l[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}
