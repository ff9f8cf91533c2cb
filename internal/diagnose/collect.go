package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/petrel-dev/petrel/internal/backend"
)

// LogTailLines is how many log lines Collect reads per crashed container
// (kubectl logs --previous --tail 20).
const LogTailLines = 20

// maxLogContainers bounds how many containers' logs one Collect reads.
const maxLogContainers = 10

// Diagnose collects the live state of target in namespace and analyses it;
// the Kubernetes backend's Diagnose is this call. It returns an error
// wrapping backend.ErrNotFound when the target does not exist and no event
// mentions it.
func Diagnose(ctx context.Context, cs kubernetes.Interface, namespace string, target backend.Ref) ([]backend.Finding, error) {
	s, err := Collect(ctx, cs, namespace, target)
	if err != nil {
		return nil, err
	}
	return Analyze(s, target), nil
}

// Collect reads from the API server what Analyze needs about target (see
// Analyze for the kinds): the workload, its pods (by the workload's label
// selector), ReplicaSets and HPA, the namespace's events, claims and
// quotas, every node and storage class, the GPU device-plugin DaemonSets of
// any namespace, and the last LogTailLines log lines of each crashed
// container (the previous instance when it restarted). An empty target
// reads everything in namespace. Lists the caller may not read
// (Forbidden: nodes, storage classes, other namespaces' DaemonSets) are
// left empty, and the analysis says less. It returns an error wrapping
// backend.ErrNotFound when the target does not exist and no event mentions
// it, and other API errors as they come.
func Collect(ctx context.Context, cs kubernetes.Interface, namespace string, target backend.Ref) (*State, error) {
	s := &State{}
	kind, name := canonicalKind(target.Kind), target.Name
	found := kind == ""
	var selector labels.Selector

	get := func(err error, what string) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s %s/%s: %w", what, namespace, name, err)
		}
		found = true
		return nil
	}
	// hpa/NAME: the HPA and its scale target, read as that target (the
	// Deployment branch lists the HPAs that scale it).
	if kind == "hpa" {
		h, err := cs.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
		if err := get(err, "HorizontalPodAutoscaler"); err != nil {
			return nil, err
		}
		if err == nil && h.Spec.ScaleTargetRef.Name != "" {
			if canonicalKind(h.Spec.ScaleTargetRef.Kind) != "deployment" {
				s.HorizontalPodAutoscalers = append(s.HorizontalPodAutoscalers, *h)
			}
			kind, name = canonicalKind(h.Spec.ScaleTargetRef.Kind), h.Spec.ScaleTargetRef.Name
		}
	}
	switch kind {
	case "pvc":
		_, err := cs.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
		if err := get(err, "PersistentVolumeClaim"); err != nil {
			return nil, err
		}
	case "job":
		j, err := cs.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
		if err := get(err, "Job"); err != nil {
			return nil, err
		}
		if err == nil {
			s.Jobs = append(s.Jobs, *j)
			selector, _ = metav1.LabelSelectorAsSelector(j.Spec.Selector)
		} else {
			selector = labels.SelectorFromSet(labels.Set{"batch.kubernetes.io/job-name": name})
		}
	case "deployment":
		d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err := get(err, "Deployment"); err != nil {
			return nil, err
		}
		if err == nil {
			s.Deployments = append(s.Deployments, *d)
			selector, _ = metav1.LabelSelectorAsSelector(d.Spec.Selector)
		}
	case "daemonset":
		d, err := cs.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err := get(err, "DaemonSet"); err != nil {
			return nil, err
		}
		if err == nil {
			s.DaemonSets = append(s.DaemonSets, *d)
			selector, _ = metav1.LabelSelectorAsSelector(d.Spec.Selector)
		}
	case "statefulset":
		d, err := cs.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err := get(err, "StatefulSet"); err != nil {
			return nil, err
		}
		if err == nil {
			s.StatefulSets = append(s.StatefulSets, *d)
			selector, _ = metav1.LabelSelectorAsSelector(d.Spec.Selector)
		}
	case "pod":
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err := get(err, "Pod"); err != nil {
			return nil, err
		}
		if err == nil {
			s.Pods = append(s.Pods, *p)
		}
	}

	// Pods: by the workload's selector, or all of the namespace.
	if kind != "pod" && (selector != nil && !selector.Empty() || kind == "" || kind == "pvc") {
		opts := metav1.ListOptions{}
		if kind != "" && kind != "pvc" {
			opts.LabelSelector = selector.String()
		}
		pods, err := cs.CoreV1().Pods(namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods in %s: %w", namespace, err)
		}
		s.Pods = append(s.Pods, pods.Items...)
		if kind == "job" && len(pods.Items) > 0 {
			found = true
		}
	}
	if kind == "deployment" || kind == "" {
		opts := metav1.ListOptions{}
		if kind != "" && selector != nil {
			opts.LabelSelector = selector.String()
		}
		if rs, err := cs.AppsV1().ReplicaSets(namespace).List(ctx, opts); err == nil {
			s.ReplicaSets = rs.Items
		} else if !apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("list ReplicaSets in %s: %w", namespace, err)
		}
		hpas, err := cs.AutoscalingV2().HorizontalPodAutoscalers(namespace).List(ctx, metav1.ListOptions{})
		if err != nil && !apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("list HorizontalPodAutoscalers in %s: %w", namespace, err)
		}
		if err == nil {
			for _, h := range hpas.Items {
				if kind == "" || h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == name {
					s.HorizontalPodAutoscalers = append(s.HorizontalPodAutoscalers, h)
				}
			}
		}
	}
	if kind == "" {
		if err := collectWorkloads(ctx, cs, namespace, s); err != nil {
			return nil, err
		}
	}

	// Events of the namespace: Analyze keeps those about the target, its
	// pods and their claims, including pods that are already gone.
	evs, err := cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list events in %s: %w", namespace, err)
	}
	s.Events = evs.Items
	if !found {
		for _, e := range s.Events {
			o := e.InvolvedObject
			if strings.EqualFold(o.Kind, kindTitle(kind)) && o.Name == name || kind == "job" && o.Kind == "Pod" && strings.HasPrefix(o.Name, name+"-") {
				found = true
				break
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("%s/%s in namespace %s: %w (no such object, and no recent event mentions it)", target.Kind, name, namespace, backend.ErrNotFound)
	}

	if svcs, err := cs.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		s.Services = svcs.Items
	} else if !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list Services in %s: %w", namespace, err)
	}
	if pvcs, err := cs.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		s.PersistentVolumeClaims = pvcs.Items
	} else if !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list PersistentVolumeClaims in %s: %w", namespace, err)
	}
	if qs, err := cs.CoreV1().ResourceQuotas(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		s.ResourceQuotas = qs.Items
	} else if !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list ResourceQuotas in %s: %w", namespace, err)
	}
	// Cluster-scoped reads; a namespaced user may not have them.
	if nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		s.Nodes = nodes.Items
	} else if !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	if scs, err := cs.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{}); err == nil {
		s.StorageClasses = scs.Items
	} else if !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list StorageClasses: %w", err)
	}
	if dss, err := cs.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range dss.Items {
			if isDevicePlugin(&d) && !(kind == "daemonset" && d.Name == name && d.Namespace == namespace) {
				s.DaemonSets = append(s.DaemonSets, d)
			}
		}
	} else if !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list DaemonSets: %w", err)
	}

	if err := collectNodePods(ctx, cs, s); err != nil {
		return nil, err
	}
	if err := collectAffinityPods(ctx, cs, s); err != nil {
		return nil, err
	}
	collectLogs(ctx, cs, s)
	return s, nil
}

// maxUsageNodes bounds how many nodes' pods Collect lists to tell busy
// GPUs from free ones.
const maxUsageNodes = 32

// collectNodePods lists, when a pod in state waits for a node, the pods of
// every namespace bound to the nodes that advertise the extended resources
// (GPUs) it asks for, so the analysis can say how much of each is in use.
func collectNodePods(ctx context.Context, cs kubernetes.Interface, s *State) error {
	want := map[corev1.ResourceName]bool{}
	for i := range s.Pods {
		p := &s.Pods[i]
		if !pendingUnscheduled(p) {
			continue
		}
		for _, n := range podResourceNames(&p.Spec) {
			if isGPUResource(n) {
				want[n] = true
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	listed := 0
	for _, n := range s.Nodes {
		uses := false
		for r := range want {
			if q, ok := n.Status.Allocatable[r]; ok && !q.IsZero() {
				uses = true
			}
		}
		if !uses || listed == maxUsageNodes {
			continue
		}
		listed++
		pods, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
		if apierrors.IsForbidden(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list pods on node %s: %w", n.Name, err)
		}
		s.NodePods = append(s.NodePods, pods.Items...)
	}
	return nil
}

// collectAffinityPods lists, for each pod in state that waits for a node
// and has required pod affinity or anti-affinity, the pods its terms
// select (in the terms' namespaces, or the pod's own), so InterPodAffinity
// can be judged from where they run. They go to NodePods: counted, never
// analysed.
func collectAffinityPods(ctx context.Context, cs kubernetes.Interface, s *State) error {
	seen := map[string]bool{}
	for _, p := range append(append([]corev1.Pod{}, s.Pods...), s.NodePods...) {
		seen[p.Namespace+"/"+p.Name] = true
	}
	for i := range s.Pods {
		p := &s.Pods[i]
		if !pendingUnscheduled(p) || p.Spec.Affinity == nil {
			continue
		}
		var terms []corev1.PodAffinityTerm
		if a := p.Spec.Affinity.PodAffinity; a != nil {
			terms = append(terms, a.RequiredDuringSchedulingIgnoredDuringExecution...)
		}
		if a := p.Spec.Affinity.PodAntiAffinity; a != nil {
			terms = append(terms, a.RequiredDuringSchedulingIgnoredDuringExecution...)
		}
		for _, t := range terms {
			sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
			if err != nil || t.LabelSelector == nil {
				continue
			}
			namespaces := t.Namespaces
			if len(namespaces) == 0 {
				namespaces = []string{p.Namespace}
			}
			for _, ns := range namespaces {
				pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
				if apierrors.IsForbidden(err) {
					continue
				}
				if err != nil {
					return fmt.Errorf("list pods %s in %s for pod affinity: %w", sel, ns, err)
				}
				for _, o := range pods.Items {
					if k := o.Namespace + "/" + o.Name; !seen[k] {
						seen[k] = true
						s.NodePods = append(s.NodePods, o)
					}
				}
			}
		}
	}
	return nil
}

// collectWorkloads lists the namespace's Jobs, Deployments, StatefulSets
// and DaemonSets (a diagnosis of everything).
func collectWorkloads(ctx context.Context, cs kubernetes.Interface, ns string, s *State) error {
	jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Jobs in %s: %w", ns, err)
	}
	s.Jobs = jobs.Items
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Deployments in %s: %w", ns, err)
	}
	s.Deployments = deps.Items
	sts, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list StatefulSets in %s: %w", ns, err)
	}
	s.StatefulSets = sts.Items
	dss, err := cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list DaemonSets in %s: %w", ns, err)
	}
	keep := dss.Items[:0]
	for _, d := range dss.Items {
		if !isDevicePlugin(&d) { // device plugins are collected cluster-wide
			keep = append(keep, d)
		}
	}
	s.DaemonSets = append(s.DaemonSets, keep...)
	return nil
}

// collectLogs reads the last lines of every crashed container: the
// previous instance of one that restarted, else the current one.
func collectLogs(ctx context.Context, cs kubernetes.Interface, s *State) {
	n := 0
	for i := range s.Pods {
		p := &s.Pods[i]
		for _, st := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
			for _, c := range st {
				t, _ := lastTermination(&c)
				crashed := (c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff") || (t != nil && t.ExitCode != 0)
				if !crashed || n >= maxLogContainers {
					continue
				}
				n++
				previous := c.State.Terminated == nil && c.LastTerminationState.Terminated != nil
				lines, err := tailLogs(ctx, cs, p, c.Name, previous)
				if err != nil && previous {
					lines, err = tailLogs(ctx, cs, p, c.Name, false)
					previous = false
				}
				if err != nil || len(lines) == 0 {
					continue
				}
				s.Logs = append(s.Logs, ContainerLog{Namespace: p.Namespace, Pod: p.Name, Container: c.Name, Previous: previous, Lines: lines})
			}
		}
	}
}

func tailLogs(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod, container string, previous bool) ([]string, error) {
	tail := int64(LogTailLines)
	rc, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, Previous: previous, TailLines: &tail}).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	text := strings.TrimRight(string(b), "\n")
	if text == "" {
		return nil, nil
	}
	return strings.Split(text, "\n"), nil
}
