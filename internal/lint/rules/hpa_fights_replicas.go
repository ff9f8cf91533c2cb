package rules

import (
	"fmt"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-HPA-004",
		Severity: backend.SeverityWarning,
		Summary:  "workload scaled by an HPA also sets spec.replicas in its manifest",
		Why: "The HPA owns the replica count. A manifest that also sets spec.replicas resets it on every kubectl apply " +
			"or GitOps sync: a model server scaled out under load drops back to the written count, the HPA scales out " +
			"again, and requests fail in between.",
		Fix:   "remove spec.replicas from the manifest and let minReplicas of the HPA set the floor",
		Kinds: []string{"HorizontalPodAutoscaler", "Deployment", "StatefulSet", "ReplicaSet"},
		Check: func(p *lint.Pass) {
			for _, h := range p.Set.HPAs {
				w := p.Set.ScaleTarget(h)
				if w == nil || !w.Has(lint.Path{"spec", "replicas"}) {
					continue
				}
				p.Report(w.Object, lint.Path{"spec", "replicas"}, fmt.Sprintf("remove spec.replicas from %s; HorizontalPodAutoscaler %s owns it", w.Ref(), h.Name),
					"spec.replicas is %d but HorizontalPodAutoscaler %s (%s:%d) scales this %s; every apply resets the count the HPA chose",
					w.Pods, h.Name, h.File, line(h), w.Kind)
			}
		},
	})
}
