package spec

import (
	"reflect"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// sameDeclaration reports whether b declares exactly what a does: two
// Volumes with the same name, metadata and spec (and, when the spec seeds
// from a relative source directory, the same spec-file directory). A
// training spec and a serving spec that share a volume both declare it, so
// applying them together must not count the second as a duplicate; kubectl
// apply likewise accepts the same object twice.
func sameDeclaration(a, b *Document) bool {
	va, ok := a.Object.(*v1alpha1.Volume)
	if !ok {
		return false
	}
	vb, ok := b.Object.(*v1alpha1.Volume)
	if !ok {
		return false
	}
	if va.Spec.Source != "" && a.Dir != b.Dir {
		return false
	}
	return reflect.DeepEqual(va.Metadata, vb.Metadata) && reflect.DeepEqual(va.Spec, vb.Spec)
}

// MergeIdentical returns docs without the repeated declarations of a
// Volume that an earlier document declares identically (see Validate);
// the first declaration is kept, in order. Different declarations of one
// name are all kept, for Validate to report.
func MergeIdentical(docs []*Document) []*Document {
	first := map[string]*Document{}
	out := make([]*Document, 0, len(docs))
	for _, d := range docs {
		key := d.Object.GetKind() + "/" + d.Object.GetName()
		if prev, ok := first[key]; ok && sameDeclaration(prev, d) {
			continue
		}
		if _, ok := first[key]; !ok {
			first[key] = d
		}
		out = append(out, d)
	}
	return out
}

// ShellEnvVars are the variables of the submitting shell recorded with a
// local workload: where programs are found (PATH) and the Python
// environment a user activated (virtualenv's VIRTUAL_ENV, conda's
// CONDA_PREFIX and CONDA_DEFAULT_ENV).
var ShellEnvVars = []string{"PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV"}
