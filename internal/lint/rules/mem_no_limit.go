package rules

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-MEM-001",
		Severity: backend.SeverityWarning,
		Summary:  "container with a memory request but no memory limit",
		Why: "Without a limit the container may use all of the node's memory. A model or batch larger than expected then " +
			"puts the whole node under memory pressure (evicting or wedging other pods, sometimes the kubelet itself) " +
			"instead of getting only this container OOM-killed with a clear reason.",
		Fix:   "set resources.limits.memory, e.g. equal to the request for Guaranteed QoS",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, true) {
				req, ok := c.c.Resources.Requests[corev1.ResourceMemory]
				if !ok {
					continue
				}
				if _, ok := c.c.Resources.Limits[corev1.ResourceMemory]; ok {
					continue
				}
				p.Report(c.w.Object, c.path.Key("resources", "requests", "memory"), "",
					"container %q requests %s of memory but sets no memory limit; if it grows past what was expected (a larger model or batch) it exhausts the node instead of being OOM-killed alone",
					c.c.Name, quantity(req))
			}
		},
	})
}
