package rules

import (
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-GPU-004",
		Severity: backend.SeverityError,
		Summary:  "fractional GPU count (0.5, 500m)",
		Why: "Extended resources are whole devices: the API server rejects a non-integer quantity (\"must be an integer\"). " +
			"Sharing a GPU takes time-slicing or MIG, configured in the device plugin, not a fraction in the pod.",
		Fix:   "ask for a whole number of GPUs; to share one, enable time-slicing or MIG and request nvidia.com/gpu.shared or a nvidia.com/mig-* slice",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, true) {
				for _, section := range []string{"limits", "requests"} {
					list := c.c.Resources.Limits
					if section == "requests" {
						list = c.c.Resources.Requests
					}
					for name, q := range list {
						if !isExtended(name) || q.MilliValue()%1000 == 0 {
							continue
						}
						at := c.path.Key("resources", section, string(name))
						written, ok := c.w.Value(at)
						if !ok {
							written = quantity(q)
						}
						p.Report(c.w.Object, at, "",
							"container %q asks for %s %s; extended resources must be whole numbers, so the API server rejects the pod",
							c.c.Name, written, name)
					}
				}
			}
		},
	})
}
