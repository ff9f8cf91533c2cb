package cluster

import "testing"

// BenchmarkStartDelete measures one kwokctl cluster start (until the API
// serves and the default ServiceAccount exists) plus 3 fake nodes Ready, and
// its deletion. Run with -benchtime=3x: each iteration takes seconds.
func BenchmarkStartDelete(b *testing.B) {
	for b.Loop() {
		c, err := start(Options{Nodes: 1, GPUNodes: 2})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.delete(); err != nil {
			b.Fatal(err)
		}
	}
}
