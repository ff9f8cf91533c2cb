package rules

import (
	"fmt"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-GPU-002",
		Severity: backend.SeverityError,
		Summary:  "GPU or other extended resource with a request different from its limit",
		Why: "The scheduler allocates whole devices and never overcommits them, so the API server rejects a pod whose " +
			"extended-resource request differs from its limit (\"must be equal to ... limit\").",
		Fix:   "set the request equal to the limit, or leave the request out (it defaults to the limit)",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, true) {
				for name, req := range c.c.Resources.Requests {
					lim, ok := c.c.Resources.Limits[name]
					if !isExtended(name) || !ok || req.Cmp(lim) == 0 {
						continue
					}
					p.Report(c.w.Object, c.path.Key("resources", "requests", string(name)),
						fmt.Sprintf("make requests[%s] equal to limits[%s] (%s), or remove the request", name, name, quantity(lim)),
						"container %q requests %s %s but limits it to %s; extended resources need request = limit, so the API server rejects the pod",
						c.c.Name, quantity(req), name, quantity(lim))
				}
			}
		},
	})
}
