package rules

import (
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-HPA-001",
		Severity: backend.SeverityError,
		Summary:  "HPA scales on CPU or memory utilization but a container of the target has no request for it",
		Why: "Utilization is usage divided by the request, summed over every container of the pod. If any container " +
			"(an injected sidecar included) has no request, the HPA reports \"missing request for cpu\", shows " +
			"<unknown> and never scales.",
		Fix:   "set resources.requests.cpu (or memory) on every container of the target, or use a ContainerResource metric for the model container",
		Kinds: []string{"HorizontalPodAutoscaler", "Deployment", "StatefulSet", "ReplicaSet", "LimitRange", "InferenceService"},
		Check: func(p *lint.Pass) {
			for _, h := range p.Set.HPAs {
				w := p.Set.ScaleTarget(h)
				if w == nil {
					continue
				}
				defaults := limitRangeDefaults(lint.InNamespace(p.Set.LimitRanges, w.Object))
				hpa := h.Typed.(*autoscalingv2.HorizontalPodAutoscaler)
				for _, m := range hpa.Spec.Metrics {
					var res corev1.ResourceName
					only := ""
					switch {
					case m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
						m.Resource.Target.Type == autoscalingv2.UtilizationMetricType:
						res = m.Resource.Name
					case m.Type == autoscalingv2.ContainerResourceMetricSourceType && m.ContainerResource != nil &&
						m.ContainerResource.Target.Type == autoscalingv2.UtilizationMetricType:
						res, only = m.ContainerResource.Name, m.ContainerResource.Container
					default:
						continue
					}
					if defaults["requests."+string(res)] {
						continue
					}
					for i := range w.PodSpec.Containers {
						c := &w.PodSpec.Containers[i]
						if only != "" && c.Name != only {
							continue
						}
						if _, ok := c.Resources.Requests[res]; ok {
							continue
						}
						if _, ok := c.Resources.Limits[res]; ok {
							continue // the request defaults to the limit
						}
						p.Report(w.Object, w.ContainerPath(i).Key("resources"),
							fmt.Sprintf("set resources.requests.%s on container %q (injected sidecars too), or scale on a ContainerResource metric of the model container", res, c.Name),
							"HorizontalPodAutoscaler %s (%s:%d) scales this %s on %s utilization, but container %q has no %s request: the HPA reports \"missing request for %s\" and never scales",
							h.Name, h.File, line(h), w.Kind, res, c.Name, res, res)
					}
				}
			}
			for _, o := range p.Set.InferenceServices {
				s := petrelSvc(o).Spec
				if s.Autoscaling != nil && s.Autoscaling.Target.CPUUtilization != nil && s.Resources.CPU == nil {
					p.Report(o, lint.Path{"spec", "autoscaling", "target", "cpuUtilization"}, "set spec.resources.cpu (the request utilization is measured against)",
						"autoscaling targets %d%% CPU utilization but spec.resources.cpu is not set, so there is no request to measure against and the service never scales",
						*s.Autoscaling.Target.CPUUtilization)
				}
			}
		},
	})
}
