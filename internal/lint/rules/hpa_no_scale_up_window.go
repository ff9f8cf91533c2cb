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
		ID:       "PTL-HPA-003",
		Severity: backend.SeverityWarning,
		Summary:  "CPU-scaled HPA without a scale-up stabilization window in front of a slow-starting workload (a note when the target is not known to start slowly)",
		Why: "behavior.scaleUp.stabilizationWindowSeconds defaults to 0, so the HPA adds replicas on the first high " +
			"reading. Model servers burn CPU while they load weights, so every rollout or restart reads as load: the HPA " +
			"scales out, then back in five minutes later, on every deploy.",
		Fix:   "set behavior.scaleUp.stabilizationWindowSeconds (60–300) and give the pods a readiness probe so starting pods are not counted",
		Kinds: []string{"HorizontalPodAutoscaler", "InferenceService"},
		Check: func(p *lint.Pass) {
			for _, h := range p.Set.HPAs {
				hpa := h.Typed.(*autoscalingv2.HorizontalPodAutoscaler)
				cpu := false
				for _, m := range hpa.Spec.Metrics {
					if (m.Resource != nil && m.Resource.Name == corev1.ResourceCPU) ||
						(m.ContainerResource != nil && m.ContainerResource.Name == corev1.ResourceCPU) {
						cpu = true
					}
				}
				if !cpu || hasWindow(hpa.Spec.Behavior) {
					continue
				}
				sev, why := backend.SeverityInfo, "if its target burns CPU while starting (model servers do while loading weights)"
				if w := p.Set.ScaleTarget(h); w != nil {
					if ok, reason := slowStarting(w); ok {
						sev, why = backend.SeverityWarning, fmt.Sprintf("and %s %s starts slowly (%s)", w.Kind, w.Name, reason)
					}
				}
				at := lint.Path{"spec", "behavior"}
				if !h.Has(at) {
					at = lint.Path{"spec"}
				}
				p.ReportSeverity(sev, h, at, "",
					"the HPA scales on CPU with no scale-up stabilization window, %s: the start-up CPU burst of every rollout adds replicas that are removed again later", why)
			}
			for _, o := range p.Set.InferenceServices {
				s := petrelSvc(o).Spec
				a := s.Autoscaling
				if a == nil || a.Target.CPUUtilization == nil {
					continue
				}
				if a.Behavior != nil && a.Behavior.ScaleUp != nil && a.Behavior.ScaleUp.StabilizationWindowSeconds != nil &&
					*a.Behavior.ScaleUp.StabilizationWindowSeconds > 0 {
					continue
				}
				sev := backend.SeverityInfo
				if s.Resources.GPU > 0 || servingImage.MatchString(s.Image) {
					sev = backend.SeverityWarning
				}
				p.ReportSeverity(sev, o, lint.Path{"spec", "autoscaling"}, "set spec.autoscaling.behavior.scaleUp.stabilizationWindowSeconds (60–300)",
					"autoscaling on CPU has no scale-up stabilization window; the CPU burst of loading the model adds replicas on every rollout")
			}
		},
	})
}

func hasWindow(b *autoscalingv2.HorizontalPodAutoscalerBehavior) bool {
	return b != nil && b.ScaleUp != nil && b.ScaleUp.StabilizationWindowSeconds != nil && *b.ScaleUp.StabilizationWindowSeconds > 0
}

// slowStarting reports whether a workload's pods take long to become
// ready: they use GPUs (large weights) or run a known model server. A
// startup probe alone is good practice, not evidence of a slow start.
func slowStarting(w *lint.Workload) (bool, string) {
	if podUsesGPU(w.PodSpec) {
		return true, "it uses GPUs"
	}
	for _, c := range w.PodSpec.Containers {
		if servingImage.MatchString(c.Image) {
			return true, "it runs the model server " + c.Image
		}
	}
	return false, ""
}
