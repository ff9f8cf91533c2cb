package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

// MaxMemoryLimitRatio is the largest memory limit / request ratio
// PTL-MEM-002 accepts.
const MaxMemoryLimitRatio = 4

func init() {
	register(&lint.Rule{
		ID:       "PTL-MEM-002",
		Severity: backend.SeverityWarning,
		Summary:  fmt.Sprintf("memory limit more than %d× the memory request", MaxMemoryLimitRatio),
		Why: "The scheduler places pods by their requests, so a node fills with pods whose limits add up to far more than " +
			"it has. When they all grow toward their limits (a data loader filling its buffers, a server loading a " +
			"second model) the node runs out and the kubelet evicts pods or the kernel OOM-kills one, not necessarily " +
			"the one that grew.",
		Fix:   "raise the memory request close to real peak use, or lower the limit",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, true) {
				req, ok1 := c.c.Resources.Requests[corev1.ResourceMemory]
				lim, ok2 := c.c.Resources.Limits[corev1.ResourceMemory]
				if !ok1 || !ok2 || req.Sign() <= 0 {
					continue
				}
				if lim.Value() <= MaxMemoryLimitRatio*req.Value() {
					continue
				}
				p.Report(c.w.Object, c.path.Key("resources", "limits", "memory"), "",
					"container %q has a memory limit of %s, %.0f× its request of %s; the scheduler packs pods by request, so the node can run out before this container reaches its limit",
					c.c.Name, quantity(lim), float64(lim.Value())/float64(req.Value()), quantity(req))
			}
		},
	})
}
