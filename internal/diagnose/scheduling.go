package diagnose

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"

	"github.com/petrel-dev/petrel/internal/backend"
)

func init() {
	register(Analyzer{
		Name: "scheduling",
		Description: "Explains why a pod stays Pending: compares its requests with the largest node's " +
			"allocatable (never fits) and with what is free now (busy), names untolerated taints and " +
			"unmatched node affinity, and notices when no node advertises the GPU resource at all.",
		Rules: []Rule{
			{"gpu-request-exceeds-nodes", "The pod asks for more GPUs than any node has: it will never schedule."},
			{"gpu-busy", "Every node that could hold the pod's GPUs has them in use: it schedules when some are freed."},
			{"gpu-not-advertised", "No node advertises the GPU resource the pod asks for: the device plugin is not running."},
			{"gpu-insufficient", "The scheduler reports too few GPUs; without nodes in the state it cannot tell busy from never."},
			{"resource-request-exceeds-nodes", "The pod asks for more CPU/memory/other resource than any node has."},
			{"resource-busy", "The pod's request fits an empty node but no node has that much free now."},
			{"untolerated-taint", "Every node that could run the pod has a taint the pod does not tolerate."},
			{"node-affinity-mismatch", "No node matches the pod's nodeSelector or required node affinity."},
			{"pod-affinity-mismatch", "The nodes with room for the pod fail its required pod affinity or anti-affinity."},
			{"unschedulable", "The scheduler cannot place the pod for another reason, quoted from its event."},
		},
		Run: runScheduling,
	})
}

// pendingUnscheduled reports whether the pod waits for a node.
func pendingUnscheduled(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodPending && p.Spec.NodeName == "" || (p.Status.Phase == "" && p.Spec.NodeName == "")
}

func runScheduling(c *Context) []backend.Finding {
	var out []backend.Finding
	for _, p := range c.Pods() {
		if !pendingUnscheduled(p) {
			continue
		}
		out = append(out, schedulePod(c, p)...)
	}
	for _, p := range c.unsavedPendingPods() {
		out = append(out, schedulePod(c, p)...)
	}
	return out
}

// unsavedPendingPods stands in for pods that scheduling events mention but
// the state does not hold (a dump of the workload and its events only): a
// Pending pod with that name and the pod template of the workload in scope
// that generated it.
func (c *Context) unsavedPendingPods() []*corev1.Pod {
	saved := map[string]bool{}
	for i := range c.State.Pods {
		saved[c.State.Pods[i].Name] = true
	}
	var out []*corev1.Pod
	for _, e := range c.ScopeEvents() {
		o := e.InvolvedObject
		if o.Kind != "Pod" || saved[o.Name] || (e.Reason != "FailedScheduling" && e.Reason != "NotTriggerScaleUp") {
			continue
		}
		if t := c.templateFor(o.Name); t != nil {
			saved[o.Name] = true
			p := &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec, Status: corev1.PodStatus{Phase: corev1.PodPending}}
			p.Name, p.Namespace = o.Name, o.Namespace
			out = append(out, p)
		}
	}
	return out
}

// templateFor returns the pod template of the Job or Deployment in scope
// whose generated pod names include pod, or nil.
func (c *Context) templateFor(pod string) *corev1.PodTemplateSpec {
	for _, j := range c.jobs {
		if (generator{"job", j.Name}).generates("Pod", pod) {
			return &j.Spec.Template
		}
	}
	for _, d := range c.deployments {
		if (generator{"deployment", d.Name}).generates("Pod", pod) {
			return &d.Spec.Template
		}
	}
	return nil
}

func schedulePod(c *Context, p *corev1.Pod) []backend.Finding {
	var (
		out       []backend.Finding
		schedMsg  string
		schedEv   []string
		taints    []corev1.Taint
		scaleUpEv string
	)
	for _, e := range c.Events("Pod", p.Namespace, p.Name) {
		switch e.Reason {
		case "FailedScheduling":
			schedMsg = e.Message
			schedEv = []string{eventEvidence(e)}
			taints = untoleratedTaints(e.Message)
		case "NotTriggerScaleUp":
			scaleUpEv = eventEvidence(e)
			if len(taints) == 0 {
				taints = untoleratedTaints(e.Message)
			}
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && schedMsg == "" && cond.Message != "" {
			schedMsg = cond.Message
			schedEv = []string{fmt.Sprintf("status.conditions[PodScheduled]: False, reason %s, message %q", cond.Reason, cond.Message)}
			taints = untoleratedTaints(cond.Message)
		}
	}
	if scaleUpEv != "" {
		schedEv = append(schedEv, scaleUpEv)
	}
	nodes := c.State.Nodes
	insufficient := map[corev1.ResourceName]bool{}
	for _, n := range insufficientResources(schedMsg) {
		insufficient[n] = true
	}
	// The scheduler's filters, computed from the node and pod objects:
	// the message, when there is one, only corroborates them.
	filt := filterNodes(c, p, nodes)
	if len(taints) == 0 {
		taints = filt.taints
	}
	for n := range filt.insufficient {
		insufficient[n] = true
	}
	explained := false

	for _, name := range podResourceNames(&p.Spec) {
		req := podRequest(&p.Spec, name)
		if req.IsZero() || (!insufficient[name] && !isGPUResource(name)) {
			continue
		}
		gpu := isGPUResource(name)
		ev := append([]string{fmt.Sprintf("pod %s requests %s %s", p.Name, req.String(), name)}, schedEv...)
		if len(nodes) == 0 {
			if insufficient[name] {
				id := "resource-busy"
				if gpu {
					id = "gpu-insufficient"
				}
				out = append(out, backend.Finding{
					RuleID: id, Severity: backend.SeverityWarning, Object: podObject(p), Evidence: ev,
					Message: fmt.Sprintf("Pod %s is Pending because no node has %s %s free; the saved state has no nodes, so it cannot tell whether any node could ever hold it.", p.Name, req.String(), name),
					Fix:     "Save the nodes too (kubectl get nodes -o yaml) and diagnose again; or lower the request.",
				})
				explained = true
			}
			continue
		}
		best, max := largestAllocatable(nodes, name)
		switch {
		case best == nil:
			if !gpu {
				out = append(out, backend.Finding{
					RuleID: "resource-request-exceeds-nodes", Severity: backend.SeverityError, Object: podObject(p), Permanent: true,
					Evidence: ev,
					Message:  fmt.Sprintf("Pod %s asks for %s %s but no node advertises %s: it will never schedule.", p.Name, req.String(), name, name),
					Fix:      fmt.Sprintf("Check the resource name %s, or install the device plugin that advertises it.", name),
				})
				explained = true
				continue
			}
			out = append(out, gpuNotAdvertised(c, p, name, req.String(), ev))
			explained = true
		case req.Cmp(max) > 0:
			id, fix := "resource-request-exceeds-nodes", fmt.Sprintf("Lower the pod's %s request to at most %s, or add a node with more %s.", name, max.String(), name)
			if gpu {
				id = "gpu-request-exceeds-nodes"
				fix = fmt.Sprintf("Request at most %s %s per pod (split the work across pods with distributed training), or add a node with at least %s GPUs.", max.String(), name, req.String())
			}
			ev = append(ev, fmt.Sprintf("largest node %s: status.allocatable[%s] = %s", best.Name, name, max.String()))
			out = append(out, backend.Finding{
				RuleID: id, Severity: backend.SeverityError, Object: podObject(p), Permanent: true, Evidence: ev,
				Message: fmt.Sprintf("Pod %s asks for %s %s but the largest node has %s — it will never schedule.", p.Name, req.String(), name, max.String()),
				Fix:     fix,
			})
			explained = true
		case insufficient[name] && filt.podAffinityBlocks:
			// A node has room; pod affinity is what keeps the pod off it.
		case insufficient[name]:
			fits, blocked := candidateNodes(p, nodes, name, req)
			if len(fits) == 0 {
				// Every node big enough refuses the pod for another
				// reason (taint, affinity): that finding explains it.
				if len(taints) == 0 && len(blocked) > 0 {
					taints = []corev1.Taint{blocked[0]}
				}
				continue
			}
			id := "resource-busy"
			if gpu {
				id = "gpu-busy"
			}
			for i, n := range fits {
				if i == maxNodeLines {
					ev = append(ev, fmt.Sprintf("… and %d more nodes", len(fits)-i))
					break
				}
				alloc := n.Status.Allocatable[name]
				inUse := c.requested(n.Name, name)
				ev = append(ev, fmt.Sprintf("node %s: %s of %s %s requested by pods bound to it", n.Name, inUse.String(), alloc.String(), name))
			}
			msg := fmt.Sprintf("Pod %s waits for %s %s: a node has that many, but they are all in use right now.", p.Name, req.String(), name)
			if gpu {
				msg = fmt.Sprintf("Pod %s waits for %s %s: all GPUs are busy right now; node %s could hold it and the pod will schedule when other pods release theirs.", p.Name, req.String(), name, fits[0].Name)
			}
			out = append(out, backend.Finding{
				RuleID: id, Severity: backend.SeverityWarning, Object: podObject(p), Evidence: ev, Message: msg,
				Fix: "Wait for running pods to finish, lower the request, or add capacity; a PriorityClass lets this pod preempt less important ones.",
			})
			explained = true
		}
	}

	if len(taints) > 0 {
		out = append(out, taintFinding(c, p, taints, schedEv))
		explained = true
	}
	if filt.podAffinityBlocks {
		ev := append([]string{}, schedEv...)
		ev = append(ev, fmt.Sprintf("node %s has room for the pod but %s", strings.Join(filt.podAffinityNodes, ", "), filt.podAffinityWhy))
		out = append(out, backend.Finding{
			RuleID: "pod-affinity-mismatch", Severity: backend.SeverityError, Object: podObject(p), Permanent: true, Evidence: ev,
			Message: fmt.Sprintf("Pod %s cannot schedule: the nodes with room for it fail its required pod affinity — %s.", p.Name, filt.podAffinityWhy),
			Fix:     "Make the pod affinity preferred instead of required, or place the pods it follows on a node that can also hold this one (e.g. a GPU node).",
		})
		explained = true
	}
	if filt.noAffinity || strings.Contains(schedMsg, "didn't match Pod's node affinity") || strings.Contains(schedMsg, "didn't match node selector") {
		if f := affinityFinding(c, p, schedEv); f != nil {
			out = append(out, *f)
			explained = true
		}
	}
	if !explained && schedMsg != "" && !strings.Contains(schedMsg, "PersistentVolumeClaim") {
		out = append(out, backend.Finding{
			RuleID: "unschedulable", Severity: backend.SeverityError, Object: podObject(p), Evidence: schedEv,
			Message: fmt.Sprintf("Pod %s cannot be scheduled: %s", p.Name, strings.TrimSpace(schedMsg)),
			Fix:     "Read the scheduler's reasons per node above and change the pod's requests, tolerations or affinity, or the nodes.",
		})
	}
	return out
}

// nodeFilterResult is what the scheduler's filters decide for one pod over
// the nodes in state.
type nodeFilterResult struct {
	// noAffinity: no node passes NodeAffinity (nodeSelector and required
	// node affinity).
	noAffinity bool
	// taints: every node that passes NodeAffinity is rejected by
	// TaintToleration; one untolerated taint per such node, deduplicated.
	taints []corev1.Taint
	// insufficient: resources that no node passing NodeAffinity and
	// TaintToleration has free (allocatable minus the requests of the pods
	// bound to it), as NodeResourcesFit judges them.
	insufficient map[corev1.ResourceName]bool
	// podAffinityBlocks: some node passes every other filter, but none of
	// those passes InterPodAffinity (required pod affinity or
	// anti-affinity); podAffinityNodes are those nodes, podAffinityWhy
	// says why the first is rejected.
	podAffinityBlocks bool
	podAffinityNodes  []string
	podAffinityWhy    string
}

// filterNodes runs the NodeUnschedulable, NodeAffinity, TaintToleration and
// NodeResourcesFit filters of the kube-scheduler (pkg/scheduler/framework/
// plugins) for pod over nodes, from the objects alone. With no nodes in
// state it decides nothing.
func filterNodes(c *Context, p *corev1.Pod, nodes []corev1.Node) nodeFilterResult {
	res := nodeFilterResult{insufficient: map[corev1.ResourceName]bool{}}
	if len(nodes) == 0 {
		return res
	}
	aff := nodeaffinity.GetRequiredNodeAffinity(p)
	var matching, tolerated []*corev1.Node
	for i := range nodes {
		n := &nodes[i]
		if ok, err := aff.Match(n); err == nil && !ok {
			continue
		}
		matching = append(matching, n)
	}
	if len(matching) == 0 {
		res.noAffinity = true
		return res
	}
	seen := map[string]bool{}
	var taints []corev1.Taint
	for _, n := range matching {
		if n.Spec.Unschedulable {
			continue
		}
		if t, bad := untoleratedTaint(p.Spec.Tolerations, n); bad {
			if k := taintString(t); !seen[k] {
				seen[k] = true
				taints = append(taints, t)
			}
			continue
		}
		tolerated = append(tolerated, n)
	}
	if len(tolerated) == 0 {
		res.taints = taints
		return res
	}
	var fitting []*corev1.Node
	for _, n := range tolerated {
		if c.fitsResources(p, n) {
			fitting = append(fitting, n)
		}
	}
	if len(fitting) > 0 {
		blocked := true
		for _, n := range fitting {
			why := c.interPodAffinity(p, n)
			if why == "" {
				blocked = false
				break
			}
			res.podAffinityNodes = append(res.podAffinityNodes, n.Name)
			if res.podAffinityWhy == "" {
				res.podAffinityWhy = why
			}
		}
		res.podAffinityBlocks = blocked
	}
	for _, name := range podResourceNames(&p.Spec) {
		req := podRequest(&p.Spec, name)
		if req.IsZero() {
			continue
		}
		fits := false
		for _, n := range tolerated {
			alloc, ok := n.Status.Allocatable[name]
			if !ok {
				continue
			}
			free := alloc.DeepCopy()
			used := c.requested(n.Name, name)
			free.Sub(used)
			if free.Cmp(req) >= 0 {
				fits = true
				break
			}
		}
		if !fits {
			res.insufficient[name] = true
		}
	}
	return res
}

// fitsResources reports whether node has free what pod requests, for every
// resource it requests (NodeResourcesFit).
func (c *Context) fitsResources(p *corev1.Pod, n *corev1.Node) bool {
	for _, name := range podResourceNames(&p.Spec) {
		req := podRequest(&p.Spec, name)
		if req.IsZero() {
			continue
		}
		alloc, ok := n.Status.Allocatable[name]
		if !ok {
			return false
		}
		free := alloc.DeepCopy()
		free.Sub(c.requested(n.Name, name))
		if free.Cmp(req) < 0 {
			return false
		}
	}
	return true
}

// interPodAffinity returns why node fails pod's required pod affinity or
// anti-affinity, as the scheduler's InterPodAffinity plugin judges it from
// the pods bound to nodes in state, or "" when it passes. A term no
// existing pod matches is satisfied when the pod matches it itself (the
// first pod of a group), as upstream allows.
func (c *Context) interPodAffinity(p *corev1.Pod, node *corev1.Node) string {
	a := p.Spec.Affinity
	if a == nil {
		return ""
	}
	matches := func(t corev1.PodAffinityTerm, other *corev1.Pod) bool {
		sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
		if err != nil || t.LabelSelector == nil {
			return false
		}
		nsOK := len(t.Namespaces) == 0 && sameNamespace(other.Namespace, p.Namespace)
		for _, ns := range t.Namespaces {
			nsOK = nsOK || ns == other.Namespace
		}
		return nsOK && sel.Matches(labels.Set(other.Labels))
	}
	bound := func(yield func(*corev1.Pod, *corev1.Node) bool) {
		for _, o := range append(ptrs(c.State.Pods), ptrs(c.State.NodePods)...) {
			if o == p || o.Spec.NodeName == "" || o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed {
				continue
			}
			if n := c.Node(o.Spec.NodeName); n != nil && !yield(o, n) {
				return
			}
		}
	}
	sameTopology := func(key string, a, b *corev1.Node) bool {
		v, ok := a.Labels[key]
		return ok && b.Labels[key] == v
	}
	if pa := a.PodAffinity; pa != nil {
		for _, t := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			anyMatch, here := false, false
			var where []string
			for o, on := range bound {
				if !matches(t, o) {
					continue
				}
				anyMatch = true
				where = append(where, fmt.Sprintf("pod %s on node %s", o.Name, on.Name))
				if sameTopology(t.TopologyKey, node, on) {
					here = true
				}
			}
			if !anyMatch && matches(t, p) {
				continue
			}
			if !here {
				if len(where) == 0 {
					return fmt.Sprintf("its required podAffinity (%s, topologyKey %s) matches no running pod", metav1.FormatLabelSelector(t.LabelSelector), t.TopologyKey)
				}
				return fmt.Sprintf("its required podAffinity (%s, topologyKey %s) matches only %s", metav1.FormatLabelSelector(t.LabelSelector), t.TopologyKey, strings.Join(where, ", "))
			}
		}
	}
	if anti := a.PodAntiAffinity; anti != nil {
		for _, t := range anti.RequiredDuringSchedulingIgnoredDuringExecution {
			for o, on := range bound {
				if matches(t, o) && sameTopology(t.TopologyKey, node, on) {
					return fmt.Sprintf("its required podAntiAffinity (%s, topologyKey %s) excludes node %s, which runs pod %s", metav1.FormatLabelSelector(t.LabelSelector), t.TopologyKey, node.Name, o.Name)
				}
			}
		}
	}
	return ""
}

// taintFinding explains an untolerated taint, with the node's effect when
// the node is in state. A pod that requests no GPU gets no automatic GPU
// toleration (GKE, ExtendedResourceToleration), which is how CPU helpers
// end up Pending on GPU-only node pools.
func taintFinding(c *Context, p *corev1.Pod, taints []corev1.Taint, schedEv []string) backend.Finding {
	t := taints[0]
	for i := range c.State.Nodes {
		for _, nt := range c.State.Nodes[i].Spec.Taints {
			if nt.Key == t.Key && (t.Value == "" || nt.Value == t.Value) {
				t.Effect = nt.Effect
			}
		}
	}
	requestsGPU := false
	for _, n := range podResourceNames(&p.Spec) {
		if isGPUResource(n) {
			requestsGPU = true
		}
	}
	ev := append([]string{}, schedEv...)
	if len(p.Spec.Tolerations) == 0 {
		ev = append(ev, fmt.Sprintf("pod %s: spec.tolerations is empty", p.Name))
	}
	msg := fmt.Sprintf("Pod %s cannot schedule: the nodes that could run it have taint %s, which the pod does not tolerate.", p.Name, taintString(t))
	if isGPUResource(corev1.ResourceName(t.Key)) || strings.Contains(t.Key, "gpu") {
		if requestsGPU {
			msg = fmt.Sprintf("Pod %s requests a GPU but does not tolerate the GPU nodes' taint %s, so it can neither schedule nor make the cluster autoscaler add a node.", p.Name, taintString(t))
		} else {
			msg = fmt.Sprintf("Pod %s requests no GPU, so no GPU toleration was added to it, and the only nodes have taint %s: it stays Pending.", p.Name, taintString(t))
		}
	}
	fix := fmt.Sprintf("Add tolerations: [{key: %s, operator: Exists, effect: %s}] to the pod template", t.Key, t.Effect)
	if !requestsGPU && strings.Contains(t.Key, "gpu") {
		fix += ", or add a node pool without the GPU taint for CPU-only pods."
	} else {
		fix += " (or enable the ExtendedResourceToleration admission plugin for GPU pods)."
	}
	return backend.Finding{
		RuleID: "untolerated-taint", Severity: backend.SeverityError, Object: podObject(p), Permanent: true,
		Evidence: ev, Message: msg, Fix: fix,
	}
}

// affinityFinding confirms against the nodes in state that none matches the
// pod's nodeSelector / required node affinity.
func affinityFinding(c *Context, p *corev1.Pod, schedEv []string) *backend.Finding {
	ev := append([]string{}, schedEv...)
	if len(p.Spec.NodeSelector) > 0 {
		ev = append(ev, fmt.Sprintf("pod %s: spec.nodeSelector %v", p.Name, p.Spec.NodeSelector))
	}
	return &backend.Finding{
		RuleID: "node-affinity-mismatch", Severity: backend.SeverityError, Object: podObject(p), Permanent: true, Evidence: ev,
		Message: fmt.Sprintf("Pod %s cannot schedule: no node has the labels its nodeSelector or required node affinity asks for.", p.Name),
		Fix:     "Label the intended nodes (kubectl label node NAME KEY=VALUE) or correct the pod's nodeSelector/affinity.",
	}
}

// gpuNotAdvertised explains a GPU request no node can meet because no node
// advertises the resource: the device plugin is not running (often its
// DaemonSet does not tolerate the GPU taint or matches no node), or the
// nodes only report the legacy alpha key.
func gpuNotAdvertised(c *Context, p *corev1.Pod, name corev1.ResourceName, req string, ev []string) backend.Finding {
	msg := fmt.Sprintf("Pod %s asks for %s %s but no node advertises %s: the GPU device plugin is not running on any node, so the pod will never schedule.", p.Name, req, name, name)
	var legacy []string
	for i := range c.State.Nodes {
		n := &c.State.Nodes[i]
		if q, ok := n.Status.Allocatable[LegacyGPUResource]; ok {
			legacy = append(legacy, n.Name)
			ev = append(ev, fmt.Sprintf("node %s: status.allocatable[%s] = %s (no %s)", n.Name, LegacyGPUResource, q.String(), name))
		}
	}
	if len(legacy) > 0 {
		msg = fmt.Sprintf("Pod %s asks for %s %s but no node advertises it; node %s reports only the deprecated %s, so the device plugin is not running there.", p.Name, req, name, strings.Join(legacy, ", "), LegacyGPUResource)
	}
	fix := "Make the device-plugin DaemonSet run on the GPU nodes (tolerate their taint, match their labels) and check its pods' logs."
	for _, d := range deviceDaemonSets(c) {
		why := daemonSetBlockers(c, d)
		if len(why) == 0 {
			continue
		}
		ev = append(ev, fmt.Sprintf("DaemonSet %s/%s: status.desiredNumberScheduled %d", d.Namespace, d.Name, d.Status.DesiredNumberScheduled))
		ev = append(ev, why...)
		fix = daemonSetFix(d, why)
	}
	return backend.Finding{
		RuleID: "gpu-not-advertised", Severity: backend.SeverityError, Object: podObject(p), Permanent: true,
		Evidence: ev, Message: msg, Fix: fix,
	}
}

// maxNodeLines bounds the per-node evidence lines of one finding.
const maxNodeLines = 5

// requested is what the unfinished pods bound to node request of name,
// computed once per resource for all nodes.
func (c *Context) requested(node string, name corev1.ResourceName) resource.Quantity {
	if c.usage == nil {
		c.usage = map[corev1.ResourceName]map[string]*resource.Quantity{}
	}
	byNode, ok := c.usage[name]
	if !ok {
		byNode = map[string]*resource.Quantity{}
		seen := map[string]bool{}
		for _, p := range append(ptrs(c.State.Pods), ptrs(c.State.NodePods)...) {
			id := p.Namespace + "/" + p.Name
			if seen[id] || p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			seen[id] = true
			q := byNode[p.Spec.NodeName]
			if q == nil {
				q = &resource.Quantity{}
				byNode[p.Spec.NodeName] = q
			}
			q.Add(podRequest(&p.Spec, name))
		}
		c.usage[name] = byNode
	}
	if q := byNode[node]; q != nil {
		return *q
	}
	return resource.Quantity{}
}

func ptrs(pods []corev1.Pod) []*corev1.Pod {
	out := make([]*corev1.Pod, len(pods))
	for i := range pods {
		out[i] = &pods[i]
	}
	return out
}

// candidateNodes splits the nodes whose allocatable of name is at least req
// into those that would take the pod once enough is free (its tolerations
// and required node affinity allow them) and the untolerated taints of the
// others.
func candidateNodes(p *corev1.Pod, nodes []corev1.Node, name corev1.ResourceName, req resource.Quantity) (fits []*corev1.Node, blocked []corev1.Taint) {
	aff := nodeaffinity.GetRequiredNodeAffinity(p)
	for i := range nodes {
		n := &nodes[i]
		if alloc, ok := n.Status.Allocatable[name]; !ok || alloc.Cmp(req) < 0 {
			continue
		}
		if ok, err := aff.Match(n); err == nil && !ok {
			continue
		}
		if t, bad := untoleratedTaint(p.Spec.Tolerations, n); bad {
			blocked = append(blocked, t)
			continue
		}
		fits = append(fits, n)
	}
	return fits, blocked
}

// untoleratedTaint returns the first NoSchedule or NoExecute taint of node
// that tolerations do not tolerate, as the scheduler's TaintToleration
// plugin judges it.
func untoleratedTaint(tolerations []corev1.Toleration, node *corev1.Node) (corev1.Taint, bool) {
	return schedcorev1.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, false)
}
