package lint

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DisableAnnotation switches rules off for one object: a comma-separated
// list of rule IDs, or "all".
const DisableAnnotation = "petrel.dev/lint-disable"

// Path is a field path inside an object: string keys and int indices, e.g.
// Path{"spec", "template", "spec", "containers", 0, "resources"}. Paths are
// values: Key and Index return new paths and never share storage.
type Path []any

// Key returns p extended by the given keys and indices.
func (p Path) Key(elems ...any) Path {
	out := make(Path, len(p), len(p)+len(elems))
	copy(out, p)
	return append(out, elems...)
}

// String renders p as spec.containers[0].resources.limits[nvidia.com/gpu]:
// keys holding dots or slashes are bracketed.
func (p Path) String() string {
	var b strings.Builder
	for _, e := range p {
		switch v := e.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(v) + "]")
		case string:
			if strings.ContainsAny(v, "./") {
				b.WriteString("[" + v + "]")
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		}
	}
	return b.String()
}

// Object is one Kubernetes or petrel object read from an input, with the
// YAML node tree it came from (for positions) and its typed form.
type Object struct {
	// File is the source name; Doc the 0-based document index in it.
	File string
	Doc  int
	// APIVersion, Kind, Name and Namespace as written (Namespace "" when
	// the manifest leaves it to the apply command).
	APIVersion, Kind, Name, Namespace string
	Labels, Annotations               map[string]string
	// Typed is a pointer to the k8s.io/api (or api/v1alpha1) type of Kind:
	// *corev1.Pod, *appsv1.Deployment, *autoscalingv2.HorizontalPodAutoscaler
	// (autoscaling/v1 objects are converted), *v1alpha1.TrainingJob, …
	Typed any

	node       *yaml.Node
	lineOffset int
	// owner is "Kind/name" of the controller that created the object
	// (metadata.ownerReferences with controller: true), or "".
	owner string
	// hpaV1 is true for autoscaling/v1 HPAs, whose metric lives at
	// spec.targetCPUUtilizationPercentage.
	hpaV1    bool
	disabled map[string]bool
}

// Ref returns "Kind/name", as Finding.Object.
func (o *Object) Ref() string { return o.Kind + "/" + o.Name }

// IsHPAV1 reports whether the object was written as autoscaling/v1.
func (o *Object) IsHPAV1() bool { return o.hpaV1 }

// Disabled reports whether the object's petrel.dev/lint-disable annotation
// names the rule (or "all").
func (o *Object) Disabled(ruleID string) bool {
	return o.disabled[ruleID] || o.disabled["all"]
}

// Pos returns the 1-based line and column of the field at path: the key of
// a mapping entry, the item of a list. A field that is not set resolves to
// its nearest parent that is, and exact is false.
func (o *Object) Pos(path Path) (line, col int, exact bool) {
	n, keyNode, exact := o.lookup(path)
	at := n
	if keyNode != nil {
		at = keyNode
	}
	return at.Line + o.lineOffset, at.Column, exact
}

// Value returns the scalar text at path, or "" and false when the field is
// not set or not a scalar.
func (o *Object) Value(path Path) (string, bool) {
	n, _, exact := o.lookup(path)
	if !exact || n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

// Has reports whether the field at path is set.
func (o *Object) Has(path Path) bool {
	_, _, exact := o.lookup(path)
	return exact
}

// lookup walks path from the object's root node; it returns the deepest
// node reached, the key node that led to it (nil for list items and the
// root) and whether the whole path was found.
func (o *Object) lookup(path Path) (n, key *yaml.Node, exact bool) {
	n = o.node
	for _, e := range path {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		switch v := e.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return n, key, false
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == v {
					key, n, found = n.Content[i], n.Content[i+1], true
					break
				}
			}
			if !found {
				return n, key, false
			}
		case int:
			if n.Kind != yaml.SequenceNode || v < 0 || v >= len(n.Content) {
				return n, key, false
			}
			n, key = n.Content[v], nil
		default:
			panic(fmt.Sprintf("lint: path element %T", e))
		}
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n, key, true
}

// scalarMap reads a mapping of string scalars at path (labels, annotations).
func scalarMap(n *yaml.Node, keys ...string) map[string]string {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	m := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i+1].Kind == yaml.ScalarNode {
			m[n.Content[i].Value] = n.Content[i+1].Value
		}
	}
	return m
}

// field returns the value node of key in mapping n, or nil.
func field(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
