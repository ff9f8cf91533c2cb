package rules

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-HPA-002",
		Severity: backend.SeverityError,
		Summary:  "HPA (or InferenceService autoscaling) with minReplicas greater than maxReplicas, or maxReplicas < 1",
		Why:      "The API server rejects such an HPA (\"must be greater than or equal to minReplicas\"), so the workload is not autoscaled at all.",
		Fix:      "set minReplicas ≤ maxReplicas, with maxReplicas ≥ 1",
		Kinds:    []string{"HorizontalPodAutoscaler", "InferenceService"},
		Check: func(p *lint.Pass) {
			check := func(o *lint.Object, base lint.Path, min *int32, max int32) {
				lo := int32(1)
				if min != nil {
					lo = *min
				}
				switch {
				case max < 1:
					p.Report(o, base.Key("maxReplicas"), "", "maxReplicas is %d; it must be at least 1", max)
				case lo > max:
					p.Report(o, base.Key("maxReplicas"), "", "maxReplicas %d is less than minReplicas %d", max, lo)
				}
			}
			for _, h := range p.Set.HPAs {
				hpa := h.Typed.(*autoscalingv2.HorizontalPodAutoscaler)
				check(h, lint.Path{"spec"}, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
			}
			for _, o := range p.Set.InferenceServices {
				if a := petrelSvc(o).Spec.Autoscaling; a != nil {
					check(o, lint.Path{"spec", "autoscaling"}, a.MinReplicas, a.MaxReplicas)
				}
			}
		},
	})
}
