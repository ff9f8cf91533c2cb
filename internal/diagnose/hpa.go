package diagnose

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "hpa",
		Description: "Reads a HorizontalPodAutoscaler's conditions and events: metrics it cannot get (a " +
			"container without a CPU request for a Utilization target), scaling it is not able to do, " +
			"replicas held at min/max, and replica counts that go up and down at every rollout.",
		Rules: []Rule{
			{"hpa-metrics-unavailable", "The HPA cannot compute its metric (e.g. a container has no CPU request), so it does not scale."},
			{"hpa-unable-to-scale", "The HPA cannot read or update its target's scale."},
			{"hpa-scaling-limited", "The HPA wants more (or fewer) replicas than maxReplicas (minReplicas) allow."},
			{"hpa-flapping", "The HPA scales up and back down repeatedly (start-up CPU spikes with no stabilization window)."},
		},
		Run: runHPA,
	})
}

var reNewSize = regexp.MustCompile(`New size: (\d+)`)

func runHPA(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, h := range c.HPAs() {
		obj := "HorizontalPodAutoscaler/" + h.Name
		events := c.Events("HorizontalPodAutoscaler", h.Namespace, h.Name)
		var metricEv []string
		metricMsg := ""
		for _, cond := range h.Status.Conditions {
			q := fmt.Sprintf("status.conditions[%s]: %s, reason %s, message %q", cond.Type, cond.Status, cond.Reason, cond.Message)
			switch {
			case cond.Type == autoscalingv2.ScalingActive && cond.Status == corev1.ConditionFalse && cond.Reason != "ScalingDisabled":
				metricEv, metricMsg = append(metricEv, q), cond.Message
			case cond.Type == autoscalingv2.AbleToScale && cond.Status == corev1.ConditionFalse:
				out = append(out, backend.Finding{RuleID: "hpa-unable-to-scale", Severity: backend.SeverityError, Object: obj, Evidence: []string{q},
					Message: fmt.Sprintf("HPA %s cannot scale its target: %s", h.Name, cond.Message),
					Fix:     "Check that spec.scaleTargetRef names an existing workload and that the HPA controller may read and update its scale subresource."})
			case cond.Type == autoscalingv2.ScalingLimited && cond.Status == corev1.ConditionTrue && (cond.Reason == "TooManyReplicas" || cond.Reason == "TooFewReplicas"):
				bound := fmt.Sprintf("maxReplicas %d", h.Spec.MaxReplicas)
				if cond.Reason == "TooFewReplicas" {
					bound = "minReplicas"
					if h.Spec.MinReplicas != nil {
						bound = fmt.Sprintf("minReplicas %d", *h.Spec.MinReplicas)
					}
				}
				out = append(out, backend.Finding{RuleID: "hpa-scaling-limited", Severity: backend.SeverityWarning, Object: obj, Evidence: []string{q},
					Message: fmt.Sprintf("HPA %s is held at %s: the metric asks for more scaling than that bound allows.", h.Name, bound),
					Fix:     "Raise maxReplicas (and make sure the cluster has the GPUs for them) or make each replica serve more; lower minReplicas if it is held at the floor."})
			}
		}
		for _, e := range events {
			if e.Reason == "FailedGetResourceMetric" || e.Reason == "FailedComputeMetricsReplicas" || e.Reason == "FailedGetPodsMetric" || e.Reason == "FailedGetExternalMetric" {
				metricEv = append(metricEv, eventEvidence(e))
				if metricMsg == "" || strings.Contains(e.Message, "missing request") {
					metricMsg = e.Message
				}
			}
		}
		// From the objects: a Utilization target on a resource some
		// container of the target does not request can never be computed
		// (the HPA controller's replica calculator needs every request).
		res, missing := utilizationWithoutRequest(c, h)
		if len(metricEv) > 0 || len(missing) > 0 {
			out = append(out, hpaMetricFinding(c, h, obj, metricMsg, res, missing, metricEv))
		}
		if f := hpaFlapping(h, obj, events); f != nil {
			out = append(out, *f)
		}
	}
	return out
}

func hpaMetricFinding(c *Context, h *autoscalingv2.HorizontalPodAutoscaler, obj, msg, res string, missing []string, ev []string) backend.Finding {
	f := backend.Finding{RuleID: "hpa-metrics-unavailable", Severity: backend.SeverityError, Object: obj, Evidence: ev}
	if len(missing) > 0 || strings.Contains(msg, "missing request for") {
		if res == "" {
			res = "cpu"
			if strings.Contains(msg, "missing request for memory") {
				res = "memory"
			}
		}
		who := "a container of its target's pods has"
		if len(missing) > 0 {
			who = fmt.Sprintf("container %s of Deployment %s has", strings.Join(missing, ", "), h.Spec.ScaleTargetRef.Name)
			f.Evidence = append(f.Evidence, fmt.Sprintf("Deployment %s: containers without resources.requests.%s: %s", h.Spec.ScaleTargetRef.Name, res, strings.Join(missing, ", ")))
		}
		f.Permanent = true
		f.Message = fmt.Sprintf("HPA %s cannot compute %s utilization because %s no %s request: the current value is <unknown> and it never scales.", h.Name, res, who, res)
		f.Fix = fmt.Sprintf("Add resources.requests.%s to every container of the target's pods, injected sidecars included, or use a ContainerResource metric for the model container.", res)
		return f
	}
	f.Message = fmt.Sprintf("HPA %s cannot get its metric, so it does not scale: %s", h.Name, msg)
	f.Fix = "Check that metrics-server (or the custom/external metrics adapter) runs and serves the metric the HPA names."
	return f
}

// utilizationWithoutRequest returns the resource of the HPA's first
// Resource or ContainerResource metric with a Utilization target that a
// container of its target Deployment's template does not request (nor
// limit, which defaults the request), with those containers; "" and nil
// when every container requests it or the target is not in state.
func utilizationWithoutRequest(c *Context, h *autoscalingv2.HorizontalPodAutoscaler) (string, []string) {
	for _, d := range c.State.Deployments {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || d.Name != h.Spec.ScaleTargetRef.Name || !sameNamespace(d.Namespace, h.Namespace) {
			continue
		}
		for _, m := range h.Spec.Metrics {
			var name corev1.ResourceName
			only := ""
			switch {
			case m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Target.Type == autoscalingv2.UtilizationMetricType:
				name = m.Resource.Name
			case m.Type == autoscalingv2.ContainerResourceMetricSourceType && m.ContainerResource != nil && m.ContainerResource.Target.Type == autoscalingv2.UtilizationMetricType:
				name, only = m.ContainerResource.Name, m.ContainerResource.Container
			default:
				continue
			}
			var missing []string
			for _, ct := range d.Spec.Template.Spec.Containers {
				if only != "" && ct.Name != only {
					continue
				}
				_, req := ct.Resources.Requests[name]
				_, lim := ct.Resources.Limits[name]
				if !req && !lim {
					missing = append(missing, ct.Name)
				}
			}
			if len(missing) > 0 {
				return string(name), missing
			}
		}
	}
	return "", nil
}

// hpaFlapping looks at SuccessfulRescale events: three or more changes of
// direction mean the replica count oscillates.
func hpaFlapping(h *autoscalingv2.HorizontalPodAutoscaler, obj string, events []*corev1.Event) *backend.Finding {
	var sizes []int
	var ev []string
	for _, e := range events {
		if e.Reason != "SuccessfulRescale" {
			continue
		}
		if m := reNewSize.FindStringSubmatch(e.Message); m != nil {
			n, _ := strconv.Atoi(m[1])
			sizes = append(sizes, n)
			ev = append(ev, eventEvidence(e))
		}
	}
	window := "not set (0 s for scale-up)"
	if b := h.Spec.Behavior; b != nil && b.ScaleUp != nil && b.ScaleUp.StabilizationWindowSeconds != nil {
		window = fmt.Sprintf("%d s", *b.ScaleUp.StabilizationWindowSeconds)
	}
	return flappingFinding("HPA "+h.Name, obj, sizes, ev, "spec.behavior.scaleUp.stabilizationWindowSeconds: "+window)
}

// flappingFinding reports replica counts (in rescale order) that change
// direction two or more times; nil otherwise. Shared by both targets.
func flappingFinding(who, obj string, sizes []int, ev []string, window string) *backend.Finding {
	turns, dir := 0, 0
	for i := 1; i < len(sizes); i++ {
		d := 0
		if sizes[i] > sizes[i-1] {
			d = 1
		} else if sizes[i] < sizes[i-1] {
			d = -1
		}
		if d != 0 && dir != 0 && d != dir {
			turns++
		}
		if d != 0 {
			dir = d
		}
	}
	if turns < 2 {
		return nil
	}
	return &backend.Finding{
		RuleID: "hpa-flapping", Severity: backend.SeverityWarning, Object: obj, Evidence: append(ev, window),
		Message: fmt.Sprintf("%s scales up and back down repeatedly (%d changes of direction in %d rescales): short CPU spikes, such as start-up or model loading, trigger immediate scale-ups.", who, turns, len(sizes)),
		Fix:     "Set behavior.scaleUp.stabilizationWindowSeconds (60-300), keep a scale-down window, and give pods a readiness probe so pods still starting are not counted.",
	}
}
