package kube

import (
	"bytes"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// ToMap converts a rendered object into the map that is applied or printed:
// apiVersion and kind kept, status and empty creationTimestamps dropped, so
// the result is what `kubectl apply` and server-side apply expect.
func ToMap(o Object) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("convert %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
	}
	delete(m, "status")
	dropNullTimestamps(m)
	return m, nil
}

// dropNullTimestamps removes "creationTimestamp: null" wherever metadata
// appears (objects and pod templates).
func dropNullTimestamps(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if k == "creationTimestamp" && c == nil {
				delete(t, k)
				continue
			}
			dropNullTimestamps(c)
		}
		if md, ok := t["metadata"].(map[string]any); ok && len(md) == 0 {
			delete(t, "metadata")
		}
	case []any:
		for _, c := range t {
			dropNullTimestamps(c)
		}
	}
}

// YAML renders the set as multi-document YAML that `kubectl apply -f -`
// accepts: notes first as comments, then one document per object.
func (s *Set) YAML() ([]byte, error) {
	var b bytes.Buffer
	for _, n := range s.Notes {
		b.WriteString("# ")
		b.WriteString(strings.ReplaceAll(n, "\n", "\n# "))
		b.WriteString("\n")
	}
	for i, o := range s.Objects {
		m, err := ToMap(o)
		if err != nil {
			return nil, err
		}
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("marshal %s %s: %w", m["kind"], o.GetName(), err)
		}
		if i > 0 || len(s.Notes) > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
