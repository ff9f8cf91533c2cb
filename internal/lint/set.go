package lint

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

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
	// The relations rules join on, computed once per run in NewSet so
	// that a rule asking them per object stays linear in the set's size:
	// Services selecting each workload and workloads each Service
	// selects (in input order), HPAs per workload, claims by
	// namespace/name (the first one declared).
	servicesFor  map[*Workload][]*Object
	workloadsFor map[*Object][]*Workload
	hpasFor      map[*Workload][]*Object
	claims       map[string]*Object
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
	s.hpasFor = make(map[*Workload][]*Object)
	for _, h := range s.HPAs {
		if w := s.targets[h]; w != nil {
			s.hpasFor[w] = append(s.hpasFor[w], h)
		}
	}
	s.claims = make(map[string]*Object, len(s.Claims))
	for _, c := range s.Claims {
		if _, dup := s.claims[c.Namespace+"/"+c.Name]; !dup {
			s.claims[c.Namespace+"/"+c.Name] = c
		}
	}
	s.indexServices()
	return s
}

// indexServices computes servicesFor and workloadsFor. Each Service with a
// selector is filed under one of its selector's pairs (the smallest key)
// in its namespace; a workload looks up only the Services filed under its
// own pod labels and checks the rest of their selectors, so the work is
// proportional to workloads × their labels, not workloads × Services.
func (s *Set) indexServices() {
	s.servicesFor = make(map[*Workload][]*Object)
	s.workloadsFor = make(map[*Object][]*Workload)
	if len(s.Services) == 0 {
		return
	}
	type entry struct {
		order int
		svc   *Object
		sel   map[string]string
	}
	byPair := map[string][]entry{}
	for i, o := range s.Services {
		sel := o.Typed.(*corev1.Service).Spec.Selector
		if len(sel) == 0 {
			continue
		}
		first := ""
		for k := range sel {
			if first == "" || k < first {
				first = k
			}
		}
		key := o.Namespace + "\x00" + first + "=" + sel[first]
		byPair[key] = append(byPair[key], entry{i, o, sel})
	}
	for _, w := range s.Workloads {
		var found []entry
		for k, v := range w.PodLabels {
			for _, e := range byPair[w.Namespace+"\x00"+k+"="+v] {
				// The endpoints controller's rule: every pair of the
				// selector is among the pod's labels.
				if hasAll(w.PodLabels, e.sel) {
					found = append(found, e)
				}
			}
		}
		if len(found) == 0 {
			continue
		}
		sort.Slice(found, func(i, j int) bool { return found[i].order < found[j].order })
		for _, e := range found {
			s.servicesFor[w] = append(s.servicesFor[w], e.svc)
			s.workloadsFor[e.svc] = append(s.workloadsFor[e.svc], w)
		}
	}
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

// hasAll reports whether labels holds every pair of sel, as a selector
// made with labels.SelectorFromSet(sel) matches (without building it).
func hasAll(lbls, sel map[string]string) bool {
	for k, v := range sel {
		if got, ok := lbls[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// HPAsFor returns the HPAs whose scaleTargetRef names w.
func (s *Set) HPAsFor(w *Workload) []*Object { return s.hpasFor[w] }

// ServicesFor returns the Services whose selector matches w's pod labels
// (in the same namespace), as the endpoints controller selects pods, in
// input order.
func (s *Set) ServicesFor(w *Workload) []*Object { return s.servicesFor[w] }

// WorkloadsFor returns the workloads whose pods the Service svc selects,
// in input order: ServicesFor read the other way.
func (s *Set) WorkloadsFor(svc *Object) []*Workload { return s.workloadsFor[svc] }

// Claim returns the PersistentVolumeClaim named name in o's namespace (the
// first one declared), or nil.
func (s *Set) Claim(o *Object, name string) *Object { return s.claims[o.Namespace+"/"+name] }

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
