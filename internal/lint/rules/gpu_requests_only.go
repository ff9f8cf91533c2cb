package rules

import (
	"fmt"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-GPU-001",
		Severity: backend.SeverityError,
		Summary:  "GPU or other extended resource asked for under requests only",
		Why: "Extended resources such as nvidia.com/gpu cannot be overcommitted, so the API server requires them under " +
			"limits (requests may be left out and then default to the limit). With the GPU under requests only the pod " +
			"is rejected: \"Limit must be set for non overcommitable resources\".",
		Fix:   "move the count to resources.limits (e.g. limits: {nvidia.com/gpu: 1}); keep requests equal or drop them",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, true) {
				for name, q := range c.c.Resources.Requests {
					if !isExtended(name) {
						continue
					}
					if _, ok := c.c.Resources.Limits[name]; ok {
						continue
					}
					p.Report(c.w.Object, c.path.Key("resources", "requests", string(name)),
						fmt.Sprintf("set resources.limits[%s]: %s in container %q (requests may stay, equal to the limit)", name, quantity(q), c.c.Name),
						"container %q asks for %s %s under requests only; extended resources must be set under limits, so the API server rejects the pod",
						c.c.Name, quantity(q), name)
				}
			}
		},
	})
}
