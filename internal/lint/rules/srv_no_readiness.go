package rules

import (
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-SRV-001",
		Severity: backend.SeverityWarning,
		Summary:  "serving container (or InferenceService) without a readiness probe",
		Why: "Without a readiness probe a pod joins the Service's endpoints as soon as its container starts, while the " +
			"model is still loading, and a rolling update removes old pods before the new ones can answer: users see " +
			"errors on every rollout and scale-up.",
		Fix:   "add a readinessProbe on an endpoint that answers 200 only once the model is loaded (e.g. httpGet /ready or /v2/health/ready); with rolling updates keep maxUnavailable: 0 so old pods serve until new ones are ready",
		Kinds: []string{"Deployment", "StatefulSet", "ReplicaSet", "Service", "InferenceService"},
		Check: func(p *lint.Pass) {
			for _, w := range p.Set.Workloads {
				idx, why := servingContainers(p.Set, w)
				for _, i := range idx {
					c := &w.PodSpec.Containers[i]
					if c.ReadinessProbe != nil {
						continue
					}
					p.Report(w.Object, w.ContainerPath(i), "",
						"container %s serves traffic (%s) but has no readinessProbe, so it receives requests before it can answer them (for a model server: before the model is loaded)", containerName(c), why)
				}
			}
			for _, o := range p.Set.InferenceServices {
				if petrelSvc(o).Spec.ReadinessProbe == nil {
					p.Report(o, lint.Path{"spec"}, "add spec.readinessProbe: {httpGet: {path: /ready}} answering 200 once the model is loaded",
						"InferenceService has no readinessProbe, so replicas receive requests before the model is loaded")
				}
			}
		},
	})
}
