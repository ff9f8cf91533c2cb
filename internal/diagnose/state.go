// Package diagnose finds the root cause of a failing or stuck workload from
// cluster state: Kubernetes objects (pods, events, nodes, claims, quotas,
// Jobs, Deployments, DaemonSets, HPAs) plus the last log lines of crashed
// containers. The same analysers run on live state (Collect) and on saved
// state (Load, the output of `kubectl get … -o yaml`), and a second entry
// point (AnalyzeJob, AnalyzeService) reads the local engine's status.
//
// Every analyser is a small registered unit (see Analyzers) with a stable
// rule ID; findings say what is wrong in one sentence, quote the status
// field or event they rest on, give the fix, and say whether waiting will
// help (backend.Finding.Permanent).
package diagnose

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// State is a snapshot of the cluster objects a diagnosis reads. Any slice
// may be empty: analysers that need an absent kind (for example Nodes, to
// compare a GPU request with node capacity) say less rather than guess.
type State struct {
	Pods                     []corev1.Pod
	Events                   []corev1.Event
	Nodes                    []corev1.Node
	PersistentVolumeClaims   []corev1.PersistentVolumeClaim
	StorageClasses           []storagev1.StorageClass
	ResourceQuotas           []corev1.ResourceQuota
	Jobs                     []batchv1.Job
	Deployments              []appsv1.Deployment
	ReplicaSets              []appsv1.ReplicaSet
	StatefulSets             []appsv1.StatefulSet
	DaemonSets               []appsv1.DaemonSet
	HorizontalPodAutoscalers []autoscalingv2.HorizontalPodAutoscaler
	// Services are the namespace's Services: the names distributed jobs
	// resolve their peers by (MASTER_ADDR, a Ray head's address).
	Services []corev1.Service
	// NodePods are pods of any namespace bound to the nodes a Pending pod
	// could use; they only count what those nodes have in use (requests),
	// and are never analysed themselves.
	NodePods []corev1.Pod
	// Logs are the last lines of containers, usually of the previous
	// (crashed) instance, as `kubectl logs --previous --tail 20` prints them.
	Logs []ContainerLog
}

// ContainerLog holds the last log lines of one container of one pod. In a
// saved dump it is written as a document of kind ContainerLog (see Load).
type ContainerLog struct {
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	// Previous is true when the lines come from the terminated instance
	// (kubectl logs --previous), the one a crash loop is about.
	Previous bool     `json:"previous,omitempty"`
	Lines    []string `json:"lines"`
}

// Merge appends every object of o to s.
func (s *State) Merge(o *State) {
	s.Pods = append(s.Pods, o.Pods...)
	s.Events = append(s.Events, o.Events...)
	s.Nodes = append(s.Nodes, o.Nodes...)
	s.PersistentVolumeClaims = append(s.PersistentVolumeClaims, o.PersistentVolumeClaims...)
	s.StorageClasses = append(s.StorageClasses, o.StorageClasses...)
	s.ResourceQuotas = append(s.ResourceQuotas, o.ResourceQuotas...)
	s.Jobs = append(s.Jobs, o.Jobs...)
	s.Deployments = append(s.Deployments, o.Deployments...)
	s.ReplicaSets = append(s.ReplicaSets, o.ReplicaSets...)
	s.StatefulSets = append(s.StatefulSets, o.StatefulSets...)
	s.DaemonSets = append(s.DaemonSets, o.DaemonSets...)
	s.HorizontalPodAutoscalers = append(s.HorizontalPodAutoscalers, o.HorizontalPodAutoscalers...)
	s.Services = append(s.Services, o.Services...)
	s.NodePods = append(s.NodePods, o.NodePods...)
	s.Logs = append(s.Logs, o.Logs...)
}

// logsOf returns the log lines of one container, preferring the previous
// (crashed) instance; nil when none were collected.
func (s *State) logsOf(namespace, pod, container string) []string {
	var current []string
	for i := range s.Logs {
		l := &s.Logs[i]
		if l.Pod != pod || (l.Namespace != "" && namespace != "" && l.Namespace != namespace) {
			continue
		}
		if l.Container != "" && container != "" && l.Container != container {
			continue
		}
		if l.Previous {
			return l.Lines
		}
		current = l.Lines
	}
	return current
}
