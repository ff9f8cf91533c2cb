package diagnose

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/petrel-dev/petrel/internal/backend"
)

// Rule is one kind of finding an analyser makes, with its stable ID.
type Rule struct {
	// ID is the finding's RuleID, stable across releases (kebab-case).
	ID string
	// Summary says in one sentence what the finding means.
	Summary string
}

// Analyzer is one registered diagnosis unit: it reads the objects in scope
// through a Context and returns findings whose RuleID is one of Rules.
type Analyzer struct {
	// Name identifies the analyser in listings (petrel diagnose --list).
	Name string
	// Description says what it reads and what it finds.
	Description string
	// Rules are the findings it can make.
	Rules []Rule
	// Run returns its findings for the objects in c's scope; it never
	// changes c.State.
	Run func(c *Context) []backend.Finding
}

var registry []Analyzer

// register adds an analyser; called from the init function of each
// analyser's file.
func register(a Analyzer) { registry = append(registry, a) }

// Analyzers returns every registered analyser, sorted by name, so that
// documentation and listings come from the same catalogue the analysis runs.
func Analyzers() []Analyzer {
	out := append([]Analyzer(nil), registry...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Analyze runs every analyser over state, limited to target and what it
// owns (a job's pods, a service's Deployment, ReplicaSets, pods and HPA,
// the claims they mount, and the events of all of these). Target kinds are
// job (a batch/v1 Job), service or deployment (an apps/v1 Deployment and
// its HPA), daemonset, statefulset and pod; an empty Ref analyses
// everything in state. Nodes, quotas and storage classes are always read.
// Findings come most severe first, permanent before passing ones.
func Analyze(state *State, target backend.Ref) []backend.Finding {
	c := newContext(state, target)
	var out []backend.Finding
	for _, a := range Analyzers() {
		out = append(out, a.Run(c)...)
	}
	out = dedupe(out)
	relate(out)
	sortFindings(out)
	return out
}

// summaryRules state an outcome (the Job failed) whose cause other findings
// name (the pod's OOM kill); they come after the causes.
var summaryRules = map[string]bool{"job-backoff-limit-exceeded": true, "job-failed": true, "job-restarting-in-place": true}

func sortFindings(out []backend.Finding) {
	rank := map[backend.Severity]int{backend.SeverityError: 0, backend.SeverityWarning: 1, backend.SeverityInfo: 2}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if rank[a.Severity] != rank[b.Severity] {
			return rank[a.Severity] < rank[b.Severity]
		}
		// Causes before outcomes ("the Job failed"), whatever their
		// permanence: the outcome is what the user already knows.
		if summaryRules[a.RuleID] != summaryRules[b.RuleID] {
			return !summaryRules[a.RuleID]
		}
		if a.Permanent != b.Permanent {
			return a.Permanent
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.RuleID < b.RuleID
	})
}

// dedupe drops findings with the same rule, object and message (several
// pods of one workload, or one event seen twice in merged dumps).
func dedupe(in []backend.Finding) []backend.Finding {
	seen := map[string]bool{}
	out := in[:0]
	for _, f := range in {
		k := f.RuleID + "\x00" + f.Object + "\x00" + f.Message
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
}

// Context is what an analyser sees: the state and the objects in scope.
type Context struct {
	State  *State
	Target backend.Ref

	pods        []*corev1.Pod
	jobs        []*batchv1.Job
	deployments []*appsv1.Deployment
	daemonSets  []*appsv1.DaemonSet
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	claims      []*corev1.PersistentVolumeClaim
	// subjects are kind/name keys of every object in scope, for events.
	subjects map[string]bool
	// generated are the workloads in scope whose pods and ReplicaSets are
	// recognised by generated name, for objects that are gone or were not
	// saved (see generatedBy).
	generated []generator
	// crashed caches the crash walk shared by several analysers.
	crashed []*crash
	// events indexes State.Events by involvedObject kind/name, oldest first.
	events map[string][]*corev1.Event
	// usage caches per-node requests by resource (see requested).
	usage map[corev1.ResourceName]map[string]*resource.Quantity
}

func key(kind, name string) string { return kind + "/" + name }

func newContext(s *State, target backend.Ref) *Context {
	c := &Context{State: s, Target: target, subjects: map[string]bool{}}
	c.Target.Kind = canonicalKind(target.Kind)
	// hpa/NAME is its scale target together with the HPA itself (the HPA
	// loop below takes every HPA of a workload in scope).
	if c.Target.Kind == "hpa" {
		for i := range s.HorizontalPodAutoscalers {
			h := &s.HorizontalPodAutoscalers[i]
			if h.Name == target.Name && h.Spec.ScaleTargetRef.Name != "" {
				c.Target = backend.Ref{Kind: canonicalKind(h.Spec.ScaleTargetRef.Kind), Name: h.Spec.ScaleTargetRef.Name}
			}
		}
	}
	all := c.Target.Kind == ""
	name := c.Target.Name
	add := func(kind, n string) { c.subjects[key(kind, n)] = true }

	for i := range s.Jobs {
		j := &s.Jobs[i]
		if all || (c.Target.Kind == "job" && j.Name == name) {
			c.jobs = append(c.jobs, j)
			add("Job", j.Name)
			c.generated = append(c.generated, generator{"job", j.Name})
		}
	}
	if c.Target.Kind == "job" && len(c.jobs) == 0 {
		add("Job", name)
		c.generated = append(c.generated, generator{"job", name})
	}
	for i := range s.Deployments {
		d := &s.Deployments[i]
		if all || (c.Target.Kind == "deployment" && d.Name == name) {
			c.deployments = append(c.deployments, d)
			add("Deployment", d.Name)
			c.generated = append(c.generated, generator{"deployment", d.Name})
		}
	}
	if c.Target.Kind == "deployment" && len(c.deployments) == 0 {
		add("Deployment", name)
		c.generated = append(c.generated, generator{"deployment", name})
	}
	for i := range s.DaemonSets {
		d := &s.DaemonSets[i]
		if all || (c.Target.Kind == "daemonset" && d.Name == name) {
			c.daemonSets = append(c.daemonSets, d)
			add("DaemonSet", d.Name)
		}
	}
	if c.Target.Kind == "statefulset" {
		add("StatefulSet", name)
		c.generated = append(c.generated, generator{"statefulset", name})
	}
	for i := range s.HorizontalPodAutoscalers {
		h := &s.HorizontalPodAutoscalers[i]
		ref := h.Spec.ScaleTargetRef
		if all || h.Name == name && c.Target.Kind == "deployment" || (ref.Kind == "Deployment" && c.subjects[key("Deployment", ref.Name)]) ||
			(ref.Kind == "StatefulSet" && c.subjects[key("StatefulSet", ref.Name)]) {
			c.hpas = append(c.hpas, h)
			add("HorizontalPodAutoscaler", h.Name)
		}
	}
	for i := range s.ReplicaSets {
		rs := &s.ReplicaSets[i]
		if all || c.ownedInScope(rs.OwnerReferences) {
			add("ReplicaSet", rs.Name)
		}
	}
	for i := range s.Pods {
		p := &s.Pods[i]
		if all || c.podInScope(p) {
			c.pods = append(c.pods, p)
			add("Pod", p.Name)
		}
	}
	// Claims mounted by pods or pod templates in scope.
	mounted := map[string]bool{}
	for _, p := range c.pods {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				mounted[v.PersistentVolumeClaim.ClaimName] = true
			}
		}
	}
	for _, t := range c.templates() {
		for _, v := range t.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				mounted[v.PersistentVolumeClaim.ClaimName] = true
			}
		}
	}
	for i := range s.PersistentVolumeClaims {
		pvc := &s.PersistentVolumeClaims[i]
		if all || mounted[pvc.Name] || (c.Target.Kind == "pvc" && pvc.Name == name) {
			c.claims = append(c.claims, pvc)
			add("PersistentVolumeClaim", pvc.Name)
		}
	}
	return c
}

// canonicalKind maps the names people type (kubectl's plural and short
// forms, petrel's job and service) to the kinds Analyze scopes by.
func canonicalKind(k string) string {
	switch strings.ToLower(k) {
	case "":
		return ""
	case "job", "jobs", "trainingjob", "trainingjobs":
		return "job"
	case "service", "services", "svc", "inferenceservice", "inferenceservices", "deployment", "deployments", "deploy":
		return "deployment"
	case "pod", "pods", "po":
		return "pod"
	case "daemonset", "daemonsets", "ds":
		return "daemonset"
	case "statefulset", "statefulsets", "sts":
		return "statefulset"
	case "hpa", "horizontalpodautoscaler", "horizontalpodautoscalers":
		return "hpa"
	case "pvc", "pvcs", "persistentvolumeclaim", "persistentvolumeclaims":
		return "pvc"
	}
	return strings.ToLower(k)
}

// ownedInScope reports whether an owner reference names an object in scope.
func (c *Context) ownedInScope(refs []metav1.OwnerReference) bool {
	for _, r := range refs {
		if c.subjects[key(r.Kind, r.Name)] {
			return true
		}
	}
	return false
}

func (c *Context) podInScope(p *corev1.Pod) bool {
	name := c.Target.Name
	switch c.Target.Kind {
	case "pod":
		return p.Name == name
	case "job":
		if p.Labels["job-name"] == name || p.Labels["batch.kubernetes.io/job-name"] == name {
			return true
		}
	case "deployment":
		for _, d := range c.deployments {
			if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil && d.Spec.Selector != nil &&
				!sel.Empty() && sel.Matches(labels.Set(p.Labels)) && sameNamespace(d.Namespace, p.Namespace) {
				return true
			}
		}
	case "pvc":
		// pvc/NAME covers the claim and the pods that mount it.
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == name {
				return true
			}
		}
	case "daemonset":
		for _, d := range c.daemonSets {
			if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil && d.Spec.Selector != nil &&
				!sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
				return true
			}
		}
	}
	if c.ownedInScope(p.OwnerReferences) {
		return true
	}
	// A pod whose owner was not saved, recognised by its generated name.
	return len(p.OwnerReferences) > 0 && c.generatedBy("Pod", p.Name)
}

// generator is a workload whose controllers name what they create.
type generator struct{ kind, name string }

// generatedBy reports whether an object of kind (Pod or ReplicaSet) has the
// name a workload in scope gives it: a Job's pods JOB-SUFFIX, a
// Deployment's ReplicaSets DEPLOYMENT-HASH and pods DEPLOYMENT-HASH-SUFFIX,
// a StatefulSet's pods STATEFULSET-ORDINAL. Counting the dashes keeps
// "api-gateway-…" out of the scope of "api".
func (c *Context) generatedBy(kind, name string) bool {
	for _, g := range c.generated {
		if g.generates(kind, name) {
			return true
		}
	}
	return false
}

func (g generator) generates(kind, name string) bool {
	rest, ok := strings.CutPrefix(name, g.name+"-")
	if !ok || rest == "" {
		return false
	}
	dashes := strings.Count(rest, "-")
	switch {
	case g.kind == "job" && kind == "Pod" && dashes == 0,
		g.kind == "deployment" && kind == "ReplicaSet" && dashes == 0,
		g.kind == "deployment" && kind == "Pod" && dashes == 1,
		g.kind == "statefulset" && kind == "Pod" && strings.Trim(rest, "0123456789") == "":
		return true
	}
	return false
}

func sameNamespace(a, b string) bool { return a == "" || b == "" || a == b }

// Pods returns the pods in scope.
func (c *Context) Pods() []*corev1.Pod { return c.pods }

// Jobs returns the batch/v1 Jobs in scope.
func (c *Context) Jobs() []*batchv1.Job { return c.jobs }

// Deployments returns the Deployments in scope.
func (c *Context) Deployments() []*appsv1.Deployment { return c.deployments }

// HPAs returns the HorizontalPodAutoscalers in scope.
func (c *Context) HPAs() []*autoscalingv2.HorizontalPodAutoscaler { return c.hpas }

// Claims returns the PersistentVolumeClaims in scope.
func (c *Context) Claims() []*corev1.PersistentVolumeClaim { return c.claims }

// templates returns the pod templates of the workloads in scope.
func (c *Context) templates() []*corev1.PodTemplateSpec {
	var out []*corev1.PodTemplateSpec
	for _, j := range c.jobs {
		out = append(out, &j.Spec.Template)
	}
	for _, d := range c.deployments {
		out = append(out, &d.Spec.Template)
	}
	for _, d := range c.daemonSets {
		out = append(out, &d.Spec.Template)
	}
	return out
}

// Events returns the events about one object (kind and name as in
// involvedObject; namespace "" matches any), oldest first.
func (c *Context) Events(kind, namespace, name string) []*corev1.Event {
	if c.events == nil {
		c.events = map[string][]*corev1.Event{}
		for i := range c.State.Events {
			e := &c.State.Events[i]
			k := key(e.InvolvedObject.Kind, e.InvolvedObject.Name)
			c.events[k] = append(c.events[k], e)
		}
		for _, es := range c.events {
			sortEvents(es)
		}
	}
	var out []*corev1.Event
	for _, e := range c.events[key(kind, name)] {
		if sameNamespace(e.InvolvedObject.Namespace, namespace) {
			out = append(out, e)
		}
	}
	return out
}

// ScopeEvents returns the events about any object in scope, oldest first.
// Events of pods or ReplicaSets that no longer exist count when their name
// starts with the workload's name.
func (c *Context) ScopeEvents() []*corev1.Event {
	var out []*corev1.Event
	for i := range c.State.Events {
		e := &c.State.Events[i]
		if c.Target.Kind == "" || c.inScopeEvent(e) {
			out = append(out, e)
		}
	}
	sortEvents(out)
	return out
}

func (c *Context) inScopeEvent(e *corev1.Event) bool {
	o := e.InvolvedObject
	if c.subjects[key(o.Kind, o.Name)] {
		return true
	}
	return (o.Kind == "Pod" || o.Kind == "ReplicaSet") && c.generatedBy(o.Kind, o.Name)
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func sortEvents(es []*corev1.Event) {
	sort.SliceStable(es, func(i, j int) bool { return eventTime(es[i]).Before(eventTime(es[j])) })
}

// eventEvidence quotes an event as evidence: type, reason, repeat count,
// source and message.
func eventEvidence(e *corev1.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "event %s/%s %s %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Type, e.Reason)
	if e.Count > 1 {
		fmt.Fprintf(&b, " (x%d)", e.Count)
	}
	if src := e.Source.Component; src != "" {
		fmt.Fprintf(&b, " from %s", src)
	}
	fmt.Fprintf(&b, ": %q", e.Message)
	return b.String()
}

// Logs returns the last log lines of a container (the previous, crashed
// instance when saved), or nil.
func (c *Context) Logs(pod *corev1.Pod, container string) []string {
	return c.State.logsOf(pod.Namespace, pod.Name, container)
}

// Node returns the node named name, or nil.
func (c *Context) Node(name string) *corev1.Node {
	for i := range c.State.Nodes {
		if c.State.Nodes[i].Name == name {
			return &c.State.Nodes[i]
		}
	}
	return nil
}

// containerRef is one container of a pod with its spec and status.
type containerRef struct {
	Pod    *corev1.Pod
	Spec   *corev1.Container // nil when the pod's spec was not saved
	Status *corev1.ContainerStatus
	Init   bool
}

// path is the status field path of the container, for evidence lines.
func (r containerRef) path() string {
	list := "containerStatuses"
	if r.Init {
		list = "initContainerStatuses"
	}
	return fmt.Sprintf("status.%s[%s]", list, r.Status.Name)
}

// eachContainer walks every init and regular container status of every pod
// in scope, so analysers never re-walk pods themselves.
func (c *Context) eachContainer(fn func(r containerRef)) {
	for _, p := range c.pods {
		for i := range p.Status.InitContainerStatuses {
			cs := &p.Status.InitContainerStatuses[i]
			fn(containerRef{Pod: p, Spec: specOf(p.Spec.InitContainers, cs.Name), Status: cs, Init: true})
		}
		for i := range p.Status.ContainerStatuses {
			cs := &p.Status.ContainerStatuses[i]
			fn(containerRef{Pod: p, Spec: specOf(p.Spec.Containers, cs.Name), Status: cs})
		}
	}
}

func specOf(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	if len(cs) == 1 && name == "" {
		return &cs[0]
	}
	return nil
}

// lastTermination returns the container's most recent termination: the
// current terminated state, else lastState.terminated; nil if it never
// terminated. field names the status field it came from.
func lastTermination(cs *corev1.ContainerStatus) (t *corev1.ContainerStateTerminated, field string) {
	if cs.State.Terminated != nil {
		return cs.State.Terminated, "state.terminated"
	}
	if cs.LastTerminationState.Terminated != nil {
		return cs.LastTerminationState.Terminated, "lastState.terminated"
	}
	return nil, ""
}

func terminationEvidence(r containerRef) string {
	t, field := lastTermination(r.Status)
	if t == nil {
		return ""
	}
	s := fmt.Sprintf("%s.%s: exitCode %d, reason %s", r.path(), field, t.ExitCode, orNone(t.Reason))
	if t.Signal != 0 {
		s += fmt.Sprintf(", signal %d", t.Signal)
	}
	if t.Message != "" {
		s += fmt.Sprintf(", message %q", t.Message)
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// logEvidence quotes the last n log lines of a container.
func logEvidence(container string, lines []string, n int) []string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, fmt.Sprintf("log %s: %s", container, strings.TrimRight(l, " \r")))
	}
	return out
}

func podObject(p *corev1.Pod) string { return "Pod/" + p.Name }

func init() {
	register(Analyzer{
		Name:        "target",
		Description: "Reports a named workload the state does not hold: deleted with its pods and logs when recent events still mention it.",
		Rules: []Rule{
			{"job-deleted", "The Job is gone though recent events mention it: ttlSecondsAfterFinished deleted it with its logs."},
			{"not-found", "The named workload is not in the state and no event mentions it."},
		},
		Run: func(c *Context) []backend.Finding {
			if f := c.targetMissing(); f != nil {
				return []backend.Finding{*f}
			}
			return nil
		},
	})
}

// targetMissing reports a named target that the state does not hold at all.
// Events outlive their objects (an hour by default), so a Job that is gone
// but still has events was deleted recently: usually by
// ttlSecondsAfterFinished, taking its pods and logs with it.
func (c *Context) targetMissing() *backend.Finding {
	t := c.Target
	if t.Kind == "" || len(c.pods) > 0 || len(c.jobs) > 0 || len(c.deployments) > 0 || len(c.daemonSets) > 0 || len(c.claims) > 0 || len(c.hpas) > 0 {
		return nil
	}
	evs := c.ScopeEvents()
	obj := kindTitle(t.Kind) + "/" + t.Name
	if t.Kind == "job" && len(evs) > 0 {
		f := &backend.Finding{
			RuleID:    "job-deleted",
			Severity:  backend.SeverityError,
			Object:    obj,
			Message:   fmt.Sprintf("Job %s no longer exists although recent events mention it: it was deleted, most likely by ttlSecondsAfterFinished, and its pods and logs went with it.", t.Name),
			Fix:       "Raise spec.ttlSecondsAfterFinished to hours (3600-28800) so failed runs can be read; a finished Job holds no GPU. Ship logs off the cluster to keep them longer.",
			Permanent: true,
		}
		for _, e := range evs {
			f.Evidence = append(f.Evidence, eventEvidence(e))
		}
		return f
	}
	if len(evs) > 0 {
		return nil
	}
	return &backend.Finding{
		RuleID:   "not-found",
		Severity: backend.SeverityError,
		Object:   obj,
		Message:  fmt.Sprintf("%s is not in the given state: there is no such object and no event mentions it.", obj),
		Fix:      "Check the name and namespace, or include the object in the dump (kubectl get pods,events,jobs,deployments,nodes -o yaml).",
	}
}

func kindTitle(k string) string {
	switch k {
	case "job":
		return "Job"
	case "deployment":
		return "Deployment"
	case "pod":
		return "Pod"
	case "daemonset":
		return "DaemonSet"
	case "statefulset":
		return "StatefulSet"
	case "hpa":
		return "HorizontalPodAutoscaler"
	case "pvc":
		return "PersistentVolumeClaim"
	}
	return k
}
