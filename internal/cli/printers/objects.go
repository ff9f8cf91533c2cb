package printers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// Object is one petrel object as -o json/yaml prints it: Kubernetes-shaped
// (apiVersion, kind, metadata with labels, spec, status), so that
// `petrel get … -o yaml | petrel apply -f -` applies it again (the spec
// reader ignores status and the server-set metadata fields).
type Object struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   ObjectMeta     `json:"metadata"`
	Spec       any            `json:"spec"`
	Status     map[string]any `json:"status,omitempty"`
}

// ObjectMeta is an Object's metadata.
type ObjectMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	CreationTimestamp time.Time         `json:"creationTimestamp"`
}

// Ref is KIND/NAME as petrel's commands accept it (job/NAME, …): what
// -o name prints.
func (o *Object) Ref() string {
	switch o.Kind {
	case v1alpha1.KindTrainingJob:
		return "job/" + o.Metadata.Name
	case v1alpha1.KindInferenceService:
		return "service/" + o.Metadata.Name
	}
	return "volume/" + o.Metadata.Name
}

// statusOf returns v's JSON fields less the ones in metadata and spec.
func statusOf(v any, drop ...string) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	for _, k := range append(drop, "name", "namespace", "labels", "spec", "creationTime") {
		delete(m, k)
	}
	return m
}

// JobObject returns a job as an Object.
func JobObject(j *backend.Job) Object {
	return Object{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindTrainingJob,
		Metadata: ObjectMeta{Name: j.Name, Namespace: j.Namespace, Labels: j.Labels, CreationTimestamp: j.CreationTime},
		Spec:     j.Spec, Status: statusOf(j)}
}

// ServiceObject returns a service as an Object.
func ServiceObject(s *backend.Service) Object {
	return Object{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindInferenceService,
		Metadata: ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels, CreationTimestamp: s.CreationTime},
		Spec:     s.Spec, Status: statusOf(s)}
}

// VolumeObject returns a volume as an Object.
func VolumeObject(v *backend.VolumeStatus) Object {
	return Object{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindVolume,
		Metadata: ObjectMeta{Name: v.Name, CreationTimestamp: v.CreationTime},
		Spec:     v.Spec, Status: statusOf(v)}
}

// IsObjectFormat reports whether -o format prints objects rather than a
// table: json, yaml, name or jsonpath=TEMPLATE.
func IsObjectFormat(format string) bool {
	switch format {
	case "json", "yaml", "name":
		return true
	}
	return strings.HasPrefix(format, "jsonpath=")
}

// CheckObjectFormat validates an -o value of a get-like command: "",
// wide, json, yaml, name or jsonpath=TEMPLATE (parsed here, so a bad
// template fails before anything is fetched).
func CheckObjectFormat(format string) error {
	if tmpl, ok := strings.CutPrefix(format, "jsonpath="); ok {
		_, err := parseJSONPath(tmpl)
		return err
	}
	return CheckFormat(format, "", "wide", "json", "yaml", "name", "jsonpath=TEMPLATE")
}

func parseJSONPath(tmpl string) (*jsonpath.JSONPath, error) {
	tmpl = strings.Trim(tmpl, `'"`)
	if !strings.Contains(tmpl, "{") {
		tmpl = "{" + tmpl + "}" // kubectl accepts .metadata.name too
	}
	jp := jsonpath.New("out")
	if err := jp.Parse(tmpl); err != nil {
		return nil, fmt.Errorf("invalid jsonpath template %q: %w", tmpl, err)
	}
	return jp, nil
}

// PrintObjects writes objs in an object format (see IsObjectFormat). As
// kubectl, one object named on the command line (single) is printed alone,
// several as a List (json, yaml, jsonpath) or one KIND/NAME per line (name).
func PrintObjects(w io.Writer, format string, objs []Object, single bool) error {
	if format == "name" {
		for _, o := range objs {
			if _, err := fmt.Fprintln(w, o.Ref()); err != nil {
				return err
			}
		}
		return nil
	}
	var v any = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
	if single && len(objs) == 1 {
		v = objs[0]
	}
	if tmpl, ok := strings.CutPrefix(format, "jsonpath="); ok {
		jp, err := parseJSONPath(tmpl)
		if err != nil {
			return err
		}
		// jsonpath walks plain data, as kubectl gives it the decoded JSON.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var data any
		if err := json.Unmarshal(b, &data); err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := jp.Execute(&buf, data); err != nil {
			return fmt.Errorf("jsonpath %s: %w", tmpl, err)
		}
		if buf.Len() > 0 && !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
			buf.WriteByte('\n')
		}
		_, err = w.Write(buf.Bytes())
		return err
	}
	_, err := Print(w, format, v)
	return err
}

// Labels formats labels as kubectl's --show-labels does: k=v pairs sorted
// and comma-separated, or <none>.
func Labels(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// YAMLDocument writes v as one YAML document preceded by "---" (get -w
// -o yaml prints a stream of documents).
func YAMLDocument(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "---\n%s", b)
	return err
}

// NamedMetrics returns the metrics of m that allowed names (a spec's
// spec.metrics); all of m when allowed is empty.
func NamedMetrics(m map[string]float64, allowed []string) map[string]float64 {
	if len(allowed) == 0 {
		return m
	}
	out := map[string]float64{}
	for _, a := range allowed {
		if v, ok := m[a]; ok {
			out[a] = v
		}
	}
	return out
}
