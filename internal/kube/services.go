package kube

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// GetService reads an inference service: its Deployment (replicas and
// conditions), pods (replicas), HorizontalPodAutoscaler (metric) and the
// events of those objects.
func (b *Backend) GetService(ctx context.Context, name string) (*backend.Service, error) {
	ns := b.nsFor(KindService, name)
	dep, err := b.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, b.explain(err, "get", "deployments.apps", ns, name)
	}
	if dep.Labels[LabelManagedBy] != ManagedBy {
		return nil, fmt.Errorf("deployment %s in namespace %q is not managed by petrel: %w", name, ns, backend.ErrNotFound)
	}
	pods, err := b.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindService, name)})
	if err != nil {
		return nil, b.explain(err, "list", "pods", ns, "")
	}
	rss, err := b.cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: SelectorString(KindService, name)})
	if err != nil {
		return nil, b.explain(err, "list", "replicasets.apps", ns, "")
	}
	var h *autoscalingv2.HorizontalPodAutoscaler
	if got, err := b.cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && got.Labels[LabelManagedBy] == ManagedBy {
		h = got
	} else if err != nil && !apierrors.IsNotFound(err) {
		return nil, b.explain(err, "get", "horizontalpodautoscalers.autoscaling", ns, name)
	}
	s := serviceStatus(dep, h, pods.Items, rss.Items)
	events, err := b.events(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	s.Events = events
	return &s, nil
}

// events lists the events of the objects named name (Deployment, Service,
// HPA, Job share the workload's name), oldest first.
func (b *Backend) events(ctx context.Context, ns, name string) ([]backend.Event, error) {
	l, err := b.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
	if err != nil {
		return nil, b.explain(err, "list", "events", ns, "")
	}
	return toEvents(l.Items), nil
}

func toEvents(items []corev1.Event) []backend.Event {
	var out []backend.Event
	for _, e := range items {
		t := e.LastTimestamp.Time
		if t.IsZero() {
			t = e.EventTime.Time
		}
		if t.IsZero() {
			t = e.CreationTimestamp.Time
		}
		out = append(out, backend.Event{Time: t, Type: e.Type, Reason: e.Reason, Message: e.Message})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// ListServices lists every petrel Deployment in the namespace with its
// pods and HPA (three list calls).
func (b *Backend) ListServices(ctx context.Context) ([]backend.Service, error) {
	ns := b.ns
	sel := LabelManagedBy + "=" + ManagedBy + "," + LabelKind + "=" + KindService
	deps, err := b.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, b.explain(err, "list", "deployments.apps", ns, "")
	}
	pods, err := b.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, b.explain(err, "list", "pods", ns, "")
	}
	hpas, err := b.cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, b.explain(err, "list", "horizontalpodautoscalers.autoscaling", ns, "")
	}
	rss, err := b.cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, b.explain(err, "list", "replicasets.apps", ns, "")
	}
	rsOf := map[string][]appsv1.ReplicaSet{}
	for _, rs := range rss.Items {
		rsOf[rs.Labels[LabelWorkload]] = append(rsOf[rs.Labels[LabelWorkload]], rs)
	}
	podsOf := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		podsOf[p.Labels[LabelWorkload]] = append(podsOf[p.Labels[LabelWorkload]], p)
	}
	hpaOf := map[string]*autoscalingv2.HorizontalPodAutoscaler{}
	for i := range hpas.Items {
		hpaOf[hpas.Items[i].Name] = &hpas.Items[i]
	}
	var out []backend.Service
	for i := range deps.Items {
		d := &deps.Items[i]
		out = append(out, serviceStatus(d, hpaOf[d.Name], podsOf[d.Name], rsOf[d.Name]))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// revisionAnnotation is the Deployment controller's revision number, on the
// Deployment and on each of its ReplicaSets.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// currentTemplateHash returns the pod-template-hash of the Deployment's
// current ReplicaSet (the one with the Deployment's revision), or "" while
// the controller has not yet observed the Deployment's latest generation.
func currentTemplateHash(dep *appsv1.Deployment, rss []appsv1.ReplicaSet) string {
	if dep.Status.ObservedGeneration < dep.Generation {
		return ""
	}
	rev := dep.Annotations[revisionAnnotation]
	for _, rs := range rss {
		if rev != "" && rs.Annotations[revisionAnnotation] == rev {
			return rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	}
	return ""
}

// serviceStatus maps a Deployment, its HPA, pods and ReplicaSets to
// petrel's vocabulary. A replica's Generation is the Deployment's
// generation when it runs the current pod template (its pod-template-hash
// is the current ReplicaSet's), else 0 (an older template, being replaced).
// URL is the Service's in-cluster DNS name; from outside the cluster use
// `kubectl port-forward svc/NAME PORT`.
func serviceStatus(dep *appsv1.Deployment, h *autoscalingv2.HorizontalPodAutoscaler, pods []corev1.Pod, rss []appsv1.ReplicaSet) backend.Service {
	s := backend.Service{
		Name:          dep.Name,
		Namespace:     dep.Namespace,
		Labels:        dep.Labels,
		ReadyReplicas: dep.Status.ReadyReplicas,
		Generation:    dep.Generation,
		CreationTime:  dep.CreationTimestamp.Time,
	}
	if !specOf(dep, &s.Spec) && len(dep.Spec.Template.Spec.Containers) > 0 {
		c := dep.Spec.Template.Spec.Containers[0]
		s.Spec = v1alpha1.InferenceServiceSpec{PodTemplate: v1alpha1.PodTemplate{Image: c.Image, Command: c.Command, Args: c.Args}}
	}
	if dep.Spec.Replicas != nil {
		s.DesiredReplicas = *dep.Spec.Replicas
	}
	port := s.Spec.Port
	if port == 0 && len(dep.Spec.Template.Spec.Containers) > 0 && len(dep.Spec.Template.Spec.Containers[0].Ports) > 0 {
		port = dep.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort
	}
	s.URL = fmt.Sprintf("http://%s.%s.svc:%d", dep.Name, dep.Namespace, port)
	for _, c := range dep.Status.Conditions {
		s.Conditions = append(s.Conditions, backend.Condition{
			Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message, LastTransitionTime: c.LastTransitionTime.Time,
		})
	}
	sortPods(pods)
	hash := currentTemplateHash(dep, rss)
	for i, p := range pods {
		r := backend.Replica{Index: i, Name: p.Name, Phase: string(p.Status.Phase), Node: p.Spec.NodeName, StartTime: timePtr(p.Status.StartTime)}
		if hash != "" && p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == hash {
			r.Generation = dep.Generation
		}
		if p.DeletionTimestamp != nil {
			r.Phase = "Terminating"
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				r.Ready = true
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name != ContainerName {
				continue
			}
			r.Restarts = cs.RestartCount
			if t := cs.LastTerminationState.Terminated; t != nil {
				r.LastReason = t.Reason
			}
			if w := cs.State.Waiting; w != nil {
				r.LastReason = w.Reason
			}
		}
		s.Replicas = append(s.Replicas, r)
	}
	if h != nil {
		s.Metric = hpaMetric(h)
	}
	return s
}

// hpaMetric renders the HPA's current value against its target, e.g.
// "cpu 42% / 70%"; "<unknown>" until the HPA controller has a reading.
func hpaMetric(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if len(h.Spec.Metrics) == 0 {
		return ""
	}
	m := h.Spec.Metrics[0]
	cur := "<unknown>"
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		for _, c := range h.Status.CurrentMetrics {
			if c.Resource != nil && c.Resource.Current.AverageUtilization != nil {
				cur = fmt.Sprintf("%d%%", *c.Resource.Current.AverageUtilization)
			}
		}
		if m.Resource.Target.AverageUtilization != nil {
			return fmt.Sprintf("cpu %s / %d%%", cur, *m.Resource.Target.AverageUtilization)
		}
	case autoscalingv2.PodsMetricSourceType:
		for _, c := range h.Status.CurrentMetrics {
			if c.Pods != nil && c.Pods.Current.AverageValue != nil {
				cur = c.Pods.Current.AverageValue.String()
			}
		}
		if m.Pods.Target.AverageValue != nil {
			return fmt.Sprintf("%s %s / %s", m.Pods.Metric.Name, cur, m.Pods.Target.AverageValue.String())
		}
	}
	return ""
}

// Scale sets the Deployment's replicas through its scale subresource. The
// service's HorizontalPodAutoscaler, if any, would overwrite the count on
// its next sync (every 15 s), so Scale deletes it first: autoscaling is off
// until the next apply recreates it, as on the local engine.
func (b *Backend) Scale(ctx context.Context, name string, replicas int32) error {
	ns := b.nsFor(KindService, name)
	dep, err := b.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return b.explain(err, "get", "deployments.apps", ns, name)
	}
	if dep.Labels[LabelManagedBy] != ManagedBy {
		return fmt.Errorf("deployment %s in namespace %q is not managed by petrel; scale it with kubectl: %w", name, ns, backend.ErrNotFound)
	}
	if _, err := b.deleteSelected(ctx, ns, resources["HorizontalPodAutoscaler"], SelectorString(KindService, name), nil); err != nil {
		return err
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	_, err = b.cs.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}, "scale")
	return b.explain(err, "patch", "deployments.apps/scale", ns, name)
}

// ListVolumes lists petrel's PersistentVolumeClaims; Path is "pvc/NAME".
func (b *Backend) ListVolumes(ctx context.Context) ([]backend.VolumeStatus, error) {
	ns := b.ns
	l, err := b.cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelKind + "=" + KindVolume})
	if err != nil {
		return nil, b.explain(err, "list", "persistentvolumeclaims", ns, "")
	}
	var out []backend.VolumeStatus
	for _, p := range l.Items {
		v := backend.VolumeStatus{Name: p.Name, Path: "pvc/" + p.Name, Phase: string(p.Status.Phase), CreationTime: p.CreationTimestamp.Time}
		if q, ok := p.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			v.Spec.Size = &q
		}
		for _, m := range p.Spec.AccessModes {
			v.Spec.AccessModes = append(v.Spec.AccessModes, string(m))
		}
		v.Spec.StorageClassName = p.Spec.StorageClassName
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
