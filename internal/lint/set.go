package lint

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// Workload is an object that creates pods from a pod template: Pod, Job,
// CronJob, Deployment, StatefulSet, DaemonSet or ReplicaSet.
type Workload struct {
	*Object
	// Role names the pod template within an operator object (a Kubeflow
	// replica type, a Ray worker group); "" for the built-in kinds.
	Role string
	// PodSpec is the pod template's spec (the Pod's own spec for a Pod);
	// SpecPath is where it is in the object.
	PodSpec  *corev1.PodSpec
	SpecPath Path
	// PodLabels are the pod template's labels, which Services select.
	PodLabels map[string]string
	// Pods is how many pods run at once: replicas (default 1) for
	// Deployments, StatefulSets and ReplicaSets, parallelism (default 1)
	// for Jobs, 1 for a Pod; PodsPerNode for a DaemonSet.
	Pods int32
	// Batch is true for Jobs and CronJobs, whose pods run to completion.
	Batch bool
	// Job is the Job spec of a Job or a CronJob's jobTemplate; JobPath is
	// where it is. Nil for other kinds.
	Job     *batchv1.JobSpec
	JobPath Path
}

// PodsPerNode is Workload.Pods for a DaemonSet: one pod on every node.
const PodsPerNode int32 = -1

// ContainerPath returns the path of spec.containers[i] in the object.
func (w *Workload) ContainerPath(i int) Path { return w.SpecPath.Key("containers", i) }

// InitContainerPath returns the path of spec.initContainers[i].
func (w *Workload) InitContainerPath(i int) Path { return w.SpecPath.Key("initContainers", i) }

// Set is every object of one lint run, with the indexes that rules joining
// objects need (HPA → target, Service → pods, claim → mounters, quota →
// workloads in its namespace).
type Set struct {
	Objects   []*Object
	Workloads []*Workload
	// Objects by kind, in input order.
	Services, HPAs, Claims, Quotas, LimitRanges []*Object
	TrainingJobs, InferenceServices, Volumes    []*Object

	// targets maps each HPA to the workload it scales (nil when absent).
	targets map[*Object]*Workload
}

// NewSet indexes objects. An object created by a controller that is in
// the set too (a ReplicaSet of a Deployment, a Pod of a Job, as in
// `kubectl get all -o yaml`) is left out, so each mistake is reported once,
// on the object people write.
func NewSet(objs []*Object) *Set {
	s := &Set{Objects: objs}
	present := make(map[string]bool, len(objs))
	for _, o := range objs {
		present[o.Namespace+"/"+o.Ref()] = true
	}
	for _, o := range objs {
		if o.owner != "" && present[o.Namespace+"/"+o.owner] {
			continue
		}
		switch t := o.Typed.(type) {
		case *corev1.Pod:
			s.Workloads = append(s.Workloads, &Workload{Object: o, PodSpec: &t.Spec, SpecPath: Path{"spec"},
				PodLabels: t.Labels, Pods: 1})
		case *batchv1.Job:
			s.Workloads = append(s.Workloads, jobWorkload(o, &t.Spec, Path{"spec"}))
		case *batchv1.CronJob:
			s.Workloads = append(s.Workloads, jobWorkload(o, &t.Spec.JobTemplate.Spec, Path{"spec", "jobTemplate", "spec"}))
		case *appsv1.Deployment:
			s.Workloads = append(s.Workloads, &Workload{Object: o, PodSpec: &t.Spec.Template.Spec,
				SpecPath: Path{"spec", "template", "spec"}, PodLabels: t.Spec.Template.Labels, Pods: replicas(t.Spec.Replicas)})
		case *appsv1.StatefulSet:
			s.Workloads = append(s.Workloads, &Workload{Object: o, PodSpec: &t.Spec.Template.Spec,
				SpecPath: Path{"spec", "template", "spec"}, PodLabels: t.Spec.Template.Labels, Pods: replicas(t.Spec.Replicas)})
		case *appsv1.ReplicaSet:
			s.Workloads = append(s.Workloads, &Workload{Object: o, PodSpec: &t.Spec.Template.Spec,
				SpecPath: Path{"spec", "template", "spec"}, PodLabels: t.Spec.Template.Labels, Pods: replicas(t.Spec.Replicas)})
		case *appsv1.DaemonSet:
			s.Workloads = append(s.Workloads, &Workload{Object: o, PodSpec: &t.Spec.Template.Spec,
				SpecPath: Path{"spec", "template", "spec"}, PodLabels: t.Spec.Template.Labels, Pods: PodsPerNode})
		case *OperatorObject:
			for i := range t.Templates {
				tp := &t.Templates[i]
				w := &Workload{Object: o, Role: tp.Role, PodSpec: &tp.Template.Spec, SpecPath: tp.Path.Key("spec"),
					PodLabels: tp.Template.Labels, Pods: tp.Pods}
				if tp.Job != nil {
					w.Batch, w.Job, w.JobPath = true, tp.Job, tp.JobPath
				}
				s.Workloads = append(s.Workloads, w)
			}
		case *corev1.Service:
			s.Services = append(s.Services, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			s.HPAs = append(s.HPAs, o)
		case *corev1.PersistentVolumeClaim:
			s.Claims = append(s.Claims, o)
		case *corev1.ResourceQuota:
			s.Quotas = append(s.Quotas, o)
		case *corev1.LimitRange:
			s.LimitRanges = append(s.LimitRanges, o)
		case *v1alpha1.TrainingJob:
			s.TrainingJobs = append(s.TrainingJobs, o)
		case *v1alpha1.InferenceService:
			s.InferenceServices = append(s.InferenceServices, o)
		case *v1alpha1.Volume:
			s.Volumes = append(s.Volumes, o)
		}
	}
	s.targets = make(map[*Object]*Workload, len(s.HPAs))
	if len(s.HPAs) > 0 {
		byName := map[string]*Workload{}
		for _, w := range s.Workloads {
			key := w.Kind + "/" + w.Namespace + "/" + w.Name
			if _, dup := byName[key]; !dup {
				byName[key] = w
			}
		}
		for _, h := range s.HPAs {
			ref := h.Typed.(*autoscalingv2.HorizontalPodAutoscaler).Spec.ScaleTargetRef
			s.targets[h] = byName[ref.Kind+"/"+h.Namespace+"/"+ref.Name]
		}
	}
	return s
}

func jobWorkload(o *Object, spec *batchv1.JobSpec, path Path) *Workload {
	pods := int32(1)
	if spec.Parallelism != nil {
		pods = *spec.Parallelism
	}
	return &Workload{Object: o, PodSpec: &spec.Template.Spec, SpecPath: path.Key("template", "spec"),
		PodLabels: spec.Template.Labels, Pods: pods, Batch: true, Job: spec, JobPath: path}
}

// replicas applies apps/v1's default of 1 replica.
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// SameNamespace reports whether two objects land in the same namespace:
// their metadata.namespace is equal. Two objects without one go wherever
// the apply command puts them, together; one with and one without may
// not, so they are not joined (no finding rests on a guess).
func SameNamespace(a, b *Object) bool {
	return a.Namespace == b.Namespace
}

// ScaleTarget returns the workload an HPA's scaleTargetRef names (by kind
// and name, in the same namespace; the first such object when it is
// declared twice), or nil when it is not in the set.
func (s *Set) ScaleTarget(hpa *Object) *Workload { return s.targets[hpa] }

// HPAsFor returns the HPAs whose scaleTargetRef names w.
func (s *Set) HPAsFor(w *Workload) []*Object {
	var out []*Object
	for _, h := range s.HPAs {
		if s.targets[h] == w {
			out = append(out, h)
		}
	}
	return out
}

// ServicesFor returns the Services whose selector matches w's pod labels,
// as the endpoints controller selects pods.
func (s *Set) ServicesFor(w *Workload) []*Object {
	var out []*Object
	for _, o := range s.Services {
		svc := o.Typed.(*corev1.Service)
		if len(svc.Spec.Selector) == 0 || !SameNamespace(o, w.Object) {
			continue
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.PodLabels)) {
			out = append(out, o)
		}
	}
	return out
}

// Claim returns the PersistentVolumeClaim named name in o's namespace, or nil.
func (s *Set) Claim(o *Object, name string) *Object {
	for _, c := range s.Claims {
		if c.Name == name && SameNamespace(c, o) {
			return c
		}
	}
	return nil
}

// InNamespace returns the objects of list that share o's namespace.
func InNamespace(list []*Object, o *Object) []*Object {
	var out []*Object
	for _, x := range list {
		if SameNamespace(x, o) {
			out = append(out, x)
		}
	}
	return out
}
