// Package spec turns petrel spec files (multi-document YAML) into the typed
// objects of api/v1alpha1. Every error names file:line:col, the field path
// and what would be valid; nothing is applied when any document is bad.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// Position is a 1-based line and column in a spec file.
type Position struct {
	Line, Col int
}

// FieldError is one problem in a spec file. Error() reads
// "FILE:LINE:COL: FIELD.PATH: message (fix)".
type FieldError struct {
	File string
	Pos  Position
	// Path is the field path, e.g. "spec.resources.memory"; empty for a
	// whole-document error.
	Path string
	Msg  string
	// Fix says what would be valid.
	Fix string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Pos.Line, e.Pos.Col)
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString(" (")
		b.WriteString(e.Fix)
		b.WriteString(")")
	}
	return b.String()
}

// ErrorList is every problem found in a set of documents, in file order.
type ErrorList []*FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Document is one decoded object with where it came from.
type Document struct {
	File   string
	Index  int // 0-based document index in the file
	Object v1alpha1.Object
	// Dir is the spec file's directory, against which workingDir and
	// volume sources are resolved on the local engine.
	Dir string
	// FileData is the whole file the document came from (shared by the
	// file's documents), so a client can send the spec to a server that
	// parses and validates it again.
	FileData []byte
	// ShellEnv is the environment of the shell that submitted the spec,
	// as far as it decides which programs a command finds (see
	// ShellEnvVars): a job started from an activated virtualenv runs its
	// python. Set by the local server from the apply request; nil when
	// the client sent none. It is not part of the spec: a changed shell
	// does not change a job.
	ShellEnv map[string]string
	// pos maps a field path to its position, for validation errors.
	pos map[string]Position
}

// PosOf returns the position of the field path (or of its nearest parent).
func (d *Document) PosOf(path string) Position {
	for {
		if p, ok := d.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.pos[""]
		}
		path = path[:i]
	}
}

// ParseFile reads and parses one spec file; see Parse.
func ParseFile(path string) ([]*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes every YAML document in data (named file in errors),
// applies no defaults and validates each object and the file's documents
// together, except that mounts of volumes not declared in the file are left
// to Validate, which sees every file and the target's volumes.
// It returns an ErrorList holding every problem found, or the documents.
func Parse(file string, data []byte) ([]*Document, error) {
	dir := filepath.Dir(file)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return ParseDir(file, dir, data)
}

// ParseDir is Parse with the directory that relative paths in the spec
// (workingDir, volume sources) are resolved against given explicitly: the
// server parses what a client sends, and standard input has no directory.
func ParseDir(file, dir string, data []byte) ([]*Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs, partial []*Document
	var errs ErrorList
	var badPaths []string
	for i := 0; ; i++ {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, yamlSyntaxError(file, err))
			break // the decoder cannot continue past a syntax error
		}
		if len(root.Content) == 0 {
			continue // empty document
		}
		for _, n := range listItems(root.Content[0]) {
			d := &decoder{file: file, pos: map[string]Position{}}
			obj := d.document(n)
			errs = append(errs, d.errs...)
			if obj == nil {
				continue
			}
			doc := &Document{File: file, Index: i, Object: obj, Dir: dir, FileData: data, pos: d.pos}
			if len(d.errs) == 0 {
				docs = append(docs, doc)
			} else {
				// Validate what did decode too, so one pass reports every
				// problem; a field that failed to decode is not judged again.
				partial = append(partial, doc)
				for _, e := range d.errs {
					badPaths = append(badPaths, e.Path)
				}
			}
		}
	}
	if err := validate(append(append([]*Document(nil), docs...), partial...), nil, false); err != nil {
		for _, e := range err.(ErrorList) {
			if !underAny(e.Path, badPaths) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Pos.Line < errs[j].Pos.Line })
		return nil, errs
	}
	return docs, nil
}

// underAny reports whether path is one of paths or a field beneath one.
func underAny(path string, paths []string) bool {
	for _, p := range paths {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") || p == "" {
			return true
		}
	}
	return false
}

// yamlSyntaxError turns a yaml.v3 error ("yaml: line 4: …") into a FieldError.
func yamlSyntaxError(file string, err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if strings.HasPrefix(msg, "line ") {
		rest := msg[5:]
		if j := strings.Index(rest, ":"); j > 0 {
			if n, e := strconv.Atoi(rest[:j]); e == nil {
				line = n
				msg = strings.TrimSpace(rest[j+1:])
			}
		}
	}
	return &FieldError{File: file, Pos: Position{line, 1}, Msg: "YAML syntax error: " + msg,
		Fix: "check indentation and that every key is followed by ': '"}
}

// listItems returns the items of a "kind: List" document (what
// `petrel get -o yaml` prints for several objects, as kubectl does), or n
// itself.
func listItems(n *yaml.Node) []*yaml.Node {
	if n.Kind != yaml.MappingNode {
		return []*yaml.Node{n}
	}
	var kind, items *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "kind":
			kind = n.Content[i+1]
		case "items":
			items = n.Content[i+1]
		}
	}
	if kind == nil || kind.Value != "List" || items == nil || items.Kind != yaml.SequenceNode {
		return []*yaml.Node{n}
	}
	return items.Content
}

// observedFields are the fields of an object as `petrel get -o yaml`
// prints it that the server sets, not the user: they are ignored on input
// so the output can be applied again, as kubectl apply ignores them. The
// key is the parent path.
var observedFields = map[string]map[string]bool{
	"":         {"status": true},
	"metadata": {"creationTimestamp": true, "resourceVersion": true, "uid": true, "generation": true, "managedFields": true, "selfLink": true},
}

type decoder struct {
	file string
	errs ErrorList
	pos  map[string]Position
}

func (d *decoder) fail(n *yaml.Node, path, fix, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{File: d.file, Pos: Position{n.Line, n.Column}, Path: path,
		Msg: fmt.Sprintf(format, args...), Fix: fix})
}

var kinds = map[string]func() v1alpha1.Object{
	v1alpha1.KindTrainingJob:      func() v1alpha1.Object { return &v1alpha1.TrainingJob{} },
	v1alpha1.KindInferenceService: func() v1alpha1.Object { return &v1alpha1.InferenceService{} },
	v1alpha1.KindVolume:           func() v1alpha1.Object { return &v1alpha1.Volume{} },
}

func (d *decoder) document(n *yaml.Node) v1alpha1.Object {
	d.pos[""] = Position{n.Line, n.Column}
	if n.Kind != yaml.MappingNode {
		d.fail(n, "", "a document is a mapping with apiVersion, kind, metadata and spec", "document is a %s, not an object", kindName(n))
		return nil
	}
	var apiVersion, kind *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "apiVersion":
			apiVersion = n.Content[i+1]
		case "kind":
			kind = n.Content[i+1]
		}
	}
	if apiVersion == nil || apiVersion.Value != v1alpha1.APIVersion {
		at := n
		got := "missing"
		if apiVersion != nil {
			at, got = apiVersion, strconv.Quote(apiVersion.Value)
		}
		d.fail(at, "apiVersion", "use apiVersion: "+v1alpha1.APIVersion, "apiVersion is %s", got)
		return nil
	}
	if kind == nil {
		d.fail(n, "kind", "set kind: TrainingJob, InferenceService or Volume", "kind is missing")
		return nil
	}
	mk, ok := kinds[kind.Value]
	if !ok {
		d.fail(kind, "kind", "valid kinds: TrainingJob, InferenceService, Volume"+suggest(kind.Value, []string{"TrainingJob", "InferenceService", "Volume"}),
			"unknown kind %q", kind.Value)
		return nil
	}
	obj := mk()
	d.value(n, reflect.ValueOf(obj).Elem(), "")
	return obj
}

var quantityType = reflect.TypeOf(resource.Quantity{})

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// value decodes n into v, recording the position of path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = Position{n.Line, n.Column}
	if v.Kind() == reflect.Pointer {
		if n.Tag == "!!null" {
			return
		}
		nv := reflect.New(v.Type().Elem())
		d.value(n, nv.Elem(), path)
		v.Set(nv)
		return
	}
	if v.Type() == quantityType {
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float") {
			d.fail(n, path, `write a Kubernetes quantity such as "500m", "2", "512Mi" or "4Gi"`, "expected a quantity, got a %s", kindName(n))
			return
		}
		q, err := resource.ParseQuantity(n.Value)
		if err != nil {
			d.fail(n, path, `write a Kubernetes quantity such as "500m", "2", "512Mi" or "4Gi" (binary suffixes Ki Mi Gi Ti, decimal k M G T, m for milli)`, "invalid quantity %q", n.Value)
			return
		}
		if q.Sign() < 0 {
			d.fail(n, path, "quantities must be zero or positive", "negative quantity %q", n.Value)
			return
		}
		v.Set(reflect.ValueOf(q))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structValue(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "write a YAML list, one '- item' per line or [a, b]", "expected a list, got a %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "write a mapping of key: value pairs", "expected a mapping, got a %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.fail(k, join(path, k.Value), "remove one of the two", "duplicate key %q", k.Value)
				continue
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			d.value(val, ev, join(path, k.Value))
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "write a string", "expected a string, got a %s", kindName(n))
			return
		}
		if n.Tag != "!!str" {
			d.fail(n, path, fmt.Sprintf("quote it: %q", n.Value), "expected a string, got %s %s (Kubernetes rejects this too)", tagName(n.Tag), n.Value)
			return
		}
		v.SetString(n.Value)
	case reflect.Int32, reflect.Int64, reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.fail(n, path, "write a whole number without quotes, e.g. 3", "expected an integer, got %s %q", tagName(n.Tag), n.Value)
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if err != nil {
			d.fail(n, path, fmt.Sprintf("write a whole number that fits in %d bits", v.Type().Bits()), "invalid integer %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fail(n, path, "write true or false", "expected a boolean, got %s %q", tagName(n.Tag), n.Value)
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	default:
		panic("spec: unsupported field type " + v.Type().String())
	}
}

type fieldInfo struct {
	index []int
	name  string
	// intOrString marks a string field that also takes an unquoted integer
	// (tag petrel:"intorstring"), as Kubernetes' intstr.IntOrString.
	intOrString bool
}

// fields lists a struct's YAML fields by name, following ",inline".
func fields(t reflect.Type) map[string]fieldInfo {
	out := map[string]fieldInfo{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for k, fi := range fields(f.Type) {
				out[k] = fieldInfo{index: append([]int{i}, fi.index...), name: k}
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = fieldInfo{index: []int{i}, name: name, intOrString: f.Tag.Get("petrel") == "intorstring"}
	}
	return out
}

func (d *decoder) structValue(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "write a mapping of field: value pairs", "expected an object, got a %s", kindName(n))
		return
	}
	fs := fields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		if observedFields[path][k.Value] {
			continue
		}
		if seen[k.Value] {
			d.fail(k, fp, "remove one of the two", "duplicate field %q", k.Value)
			continue
		}
		seen[k.Value] = true
		fi, ok := fs[k.Value]
		if !ok {
			names := make([]string, 0, len(fs))
			for name := range fs {
				names = append(names, name)
			}
			sort.Strings(names)
			d.fail(k, fp, "valid fields here: "+strings.Join(names, ", ")+suggest(k.Value, names), "unknown field %q", k.Value)
			continue
		}
		if fi.intOrString && val.Kind == yaml.ScalarNode && val.Tag == "!!int" {
			d.pos[fp] = Position{val.Line, val.Column}
			v.FieldByIndex(fi.index).SetString(val.Value)
			continue
		}
		d.value(val, v.FieldByIndex(fi.index), fp)
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return tagName(n.Tag) + " " + strconv.Quote(n.Value)
	}
	return "value"
}

func tagName(tag string) string {
	switch tag {
	case "!!str":
		return "string"
	case "!!int":
		return "integer"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	case "!!null":
		return "null"
	}
	return strings.TrimPrefix(tag, "!!")
}

// suggest returns "; did you mean X?" for the closest candidate within an
// edit distance of 1 + len(got)/3 (case-insensitive), or "".
func suggest(got string, candidates []string) string {
	best, bestD := "", 2+len(got)/3
	for _, c := range candidates {
		if dd := EditDistance(strings.ToLower(got), strings.ToLower(c)); dd < bestD {
			best, bestD = c, dd
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + strconv.Quote(best) + "?"
}

// EditDistance is the Levenshtein distance between a and b in bytes (for
// "did you mean" suggestions).
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
