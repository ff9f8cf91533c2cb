package rules

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-SRV-003",
		Severity: backend.SeverityWarning,
		Summary:  "GPU Deployment or InferenceService whose rolling update surges (maxSurge > 0, the default 25%)",
		Why: "A rolling update with maxSurge > 0 starts each new pod before an old one stops, so it needs a spare GPU. " +
			"On a cluster whose GPUs are all in use the new pod stays Pending and the rollout never finishes. The " +
			"default maxSurge of 25% rounds up to one pod.",
		Fix:   "set strategy.rollingUpdate to {maxSurge: 0, maxUnavailable: 1} (or strategy type Recreate) so each old pod frees its GPU first",
		Kinds: []string{"Deployment", "InferenceService"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				d, ok := w.Typed.(*appsv1.Deployment)
				if !ok || !podUsesGPU(w.PodSpec) || d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
					continue
				}
				surge := intstr.FromString("25%")
				at := lint.Path{"spec", "strategy"}
				if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
					surge = *ru.MaxSurge
					at = at.Key("rollingUpdate", "maxSurge")
				}
				n, err := intstr.GetScaledValueFromIntOrPercent(&surge, int(max(w.Pods, 1)), true)
				if err != nil || n == 0 {
					continue
				}
				p.Report(w.Object, at, "",
					"the rolling update surges %d pod(s) (maxSurge %s), each needing a free GPU; with every GPU in use the rollout stays stuck", n, surge.String())
			}
			for _, o := range p.Set.InferenceServices {
				s := petrelSvc(o).Spec
				if s.Resources.GPU == 0 {
					continue
				}
				surge := intstr.FromString("25%")
				at := lint.Path{"spec", "strategy"}
				if s.Strategy != nil && s.Strategy.MaxSurge != "" {
					surge = intstr.Parse(s.Strategy.MaxSurge)
					at = at.Key("maxSurge")
				}
				n, err := intstr.GetScaledValueFromIntOrPercent(&surge, 1, true)
				if err != nil || n == 0 {
					continue
				}
				p.Report(o, at, "set spec.strategy: {maxSurge: \"0\", maxUnavailable: \"1\"}",
					"the rolling update surges (maxSurge %s), so each new replica needs a free GPU; with every GPU in use the update stays stuck", surge.String())
			}
		},
	})
}
