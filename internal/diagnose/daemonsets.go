package diagnose

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "daemonsets",
		Description: "Finds DaemonSets that run on no node because every node has a taint they do not tolerate " +
			"or lacks the labels their node affinity requires — for the GPU device plugin this means no node " +
			"advertises GPUs — and nodes or pods that still use the legacy alpha GPU resource.",
		Rules: []Rule{
			{"daemonset-not-scheduled", "A DaemonSet wants 0 pods: no node tolerates/matches it (the device plugin: no GPUs advertised)."},
			{"gpu-legacy-resource", "A node or pod uses the deprecated alpha.kubernetes.io/nvidia-gpu resource."},
		},
		Run: runDaemonSets,
	})
}

// isDevicePlugin reports whether a DaemonSet runs a GPU device plugin,
// judged by its name or its containers' images.
func isDevicePlugin(d *appsv1.DaemonSet) bool {
	if strings.Contains(d.Name, "device-plugin") {
		return true
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if strings.Contains(c.Image, "device-plugin") {
			return true
		}
	}
	return false
}

// deviceDaemonSets returns every device-plugin DaemonSet in state, in any
// namespace: it serves every GPU pod, whatever the target.
func deviceDaemonSets(c *Context) []*appsv1.DaemonSet {
	var out []*appsv1.DaemonSet
	for i := range c.State.DaemonSets {
		if isDevicePlugin(&c.State.DaemonSets[i]) {
			out = append(out, &c.State.DaemonSets[i])
		}
	}
	return out
}

// daemonSetBlockers returns, grouped by reason, why each node in state
// refuses the DaemonSet's pods; nil when it is scheduled somewhere, when
// some node would take it, or when no nodes were saved.
func daemonSetBlockers(c *Context, d *appsv1.DaemonSet) []string {
	nodes := c.State.Nodes
	if len(nodes) == 0 || d.Status.DesiredNumberScheduled > 0 {
		return nil
	}
	spec := d.Spec.Template.Spec
	aff := nodeaffinity.GetRequiredNodeAffinity(&corev1.Pod{Spec: spec})
	byReason := map[string][]string{}
	for i := range nodes {
		n := &nodes[i]
		if ok, err := aff.Match(n); err == nil && !ok {
			byReason["labels match none of its required node affinity terms / nodeSelector"+affinityTerms(&spec)] = append(byReason["labels match none of its required node affinity terms / nodeSelector"+affinityTerms(&spec)], n.Name)
			continue
		}
		if t, bad := untoleratedTaint(spec.Tolerations, n); bad {
			r := fmt.Sprintf("taint %s is not tolerated (tolerations: %s)", taintString(t), tolerationsString(spec.Tolerations))
			byReason[r] = append(byReason[r], n.Name)
			continue
		}
		return nil // this node would take it: the status is stale or something else is wrong
	}
	var out []string
	for r, ns := range byReason {
		out = append(out, fmt.Sprintf("node(s) %s: %s", strings.Join(ns, ", "), r))
	}
	sort.Strings(out)
	return out
}

func affinityTerms(spec *corev1.PodSpec) string {
	var terms []string
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			var req []string
			for _, e := range t.MatchExpressions {
				req = append(req, fmt.Sprintf("%s %s %v", e.Key, e.Operator, e.Values))
			}
			terms = append(terms, strings.Join(req, " and "))
		}
	}
	for k, v := range spec.NodeSelector {
		terms = append(terms, k+"="+v)
	}
	if len(terms) == 0 {
		return ""
	}
	return " (wants " + strings.Join(terms, " or ") + ")"
}

func tolerationsString(ts []corev1.Toleration) string {
	if len(ts) == 0 {
		return "none"
	}
	var out []string
	for _, t := range ts {
		s := t.Key
		if t.Operator == corev1.TolerationOpEqual || t.Value != "" {
			s += "=" + t.Value
		}
		if t.Effect != "" {
			s += ":" + string(t.Effect)
		}
		if s == "" {
			s = "everything"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// daemonSetFix says what lets the DaemonSet onto the nodes.
func daemonSetFix(d *appsv1.DaemonSet, why []string) string {
	all := strings.Join(why, " ")
	var fixes []string
	if strings.Contains(all, "taint") {
		key := "nvidia.com/gpu"
		if i := strings.Index(all, "taint "); i >= 0 {
			rest := all[i+len("taint "):]
			if j := strings.IndexAny(rest, "=:"); j > 0 {
				key = rest[:j]
			}
		}
		fixes = append(fixes, fmt.Sprintf("add tolerations: [{key: %s, operator: Exists, effect: NoSchedule}] to DaemonSet %s (and to the GPU workloads)", key, d.Name))
	}
	if strings.Contains(all, "affinity") {
		f := fmt.Sprintf("label the GPU nodes so DaemonSet %s's required node affinity matches", d.Name)
		if isDevicePlugin(d) {
			f += " (deploy Node Feature Discovery / GPU Feature Discovery, e.g. the chart's gfd.enabled, or kubectl label node NAME nvidia.com/gpu.present=true)"
		}
		fixes = append(fixes, f)
	}
	if len(fixes) == 0 {
		return "Let the DaemonSet onto the nodes."
	}
	s := strings.Join(fixes, "; ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func runDaemonSets(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, d := range c.daemonSets {
		why := daemonSetBlockers(c, d)
		if len(why) == 0 {
			continue
		}
		msg := fmt.Sprintf("DaemonSet %s runs on no node: every node refuses its pods.", d.Name)
		if isDevicePlugin(d) {
			msg = fmt.Sprintf("DaemonSet %s is the GPU device plugin and runs on no node, so no node advertises GPUs and every GPU pod stays Pending.", d.Name)
		}
		ev := append([]string{fmt.Sprintf("DaemonSet %s/%s: status.desiredNumberScheduled %d, numberReady %d", d.Namespace, d.Name, d.Status.DesiredNumberScheduled, d.Status.NumberReady)}, why...)
		out = append(out, backend.Finding{
			RuleID: "daemonset-not-scheduled", Severity: backend.SeverityError, Object: "DaemonSet/" + d.Name, Permanent: true,
			Message: msg, Evidence: ev, Fix: daemonSetFix(d, why),
		})
	}
	// Legacy GPU key: on nodes (when the whole state or a GPU workload is
	// examined) and on pods in scope.
	gpuScope := c.Target.Kind == ""
	for _, p := range c.Pods() {
		for _, n := range podResourceNames(&p.Spec) {
			if isGPUResource(n) {
				gpuScope = true
			}
			if n == LegacyGPUResource {
				out = append(out, backend.Finding{
					RuleID: "gpu-legacy-resource", Severity: backend.SeverityWarning, Object: podObject(p), Permanent: true,
					Message:  fmt.Sprintf("Pod %s asks for the deprecated %s resource, which device plugins do not provide.", p.Name, LegacyGPUResource),
					Evidence: []string{fmt.Sprintf("pod %s: resources.limits[%s]", p.Name, n)},
					Fix:      "Ask for nvidia.com/gpu under resources.limits instead.",
				})
			}
		}
	}
	if gpuScope {
		for i := range c.State.Nodes {
			n := &c.State.Nodes[i]
			q, ok := n.Status.Allocatable[LegacyGPUResource]
			if !ok {
				continue
			}
			_, modern := n.Status.Allocatable["nvidia.com/gpu"]
			msg := fmt.Sprintf("Node %s reports GPUs under the deprecated %s key", n.Name, LegacyGPUResource)
			if !modern {
				msg += " and not as nvidia.com/gpu: the NVIDIA device plugin is not running on it."
			} else {
				msg += "."
			}
			out = append(out, backend.Finding{
				RuleID: "gpu-legacy-resource", Severity: backend.SeverityWarning, Object: "Node/" + n.Name, Permanent: true,
				Message:  msg,
				Evidence: []string{fmt.Sprintf("node %s: status.allocatable[%s] = %s", n.Name, LegacyGPUResource, q.String())},
				Fix:      "Run the NVIDIA device plugin on the node (tolerating its taints) and drop the Accelerators feature gate.",
			})
		}
	}
	return out
}
