// Package kube is petrel's Kubernetes target: it renders spec objects into
// the native objects the field expects (render.go), applies them with
// server-side apply, and reads status back from Jobs, Pods, Deployments,
// HorizontalPodAutoscalers and Events (backend.go).
package kube

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/spec"
)

// Labels and annotations petrel puts on every object it renders.
const (
	// LabelName is app.kubernetes.io/name: the workload's or volume's name.
	LabelName = "app.kubernetes.io/name"
	// LabelManagedBy is app.kubernetes.io/managed-by; its value is ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy on everything petrel makes.
	ManagedBy = "petrel"
	// LabelKind is petrel.dev/kind: "job", "service" or "volume".
	LabelKind = "petrel.dev/kind"
	// LabelWorkload is petrel.dev/workload: the petrel object's name. With
	// LabelKind and LabelManagedBy it selects exactly the objects petrel
	// made for one workload; delete never removes anything else. (Two
	// labels rather than one "<kind>-<name>" value, because a name may
	// already use all 63 characters a label value allows.)
	LabelWorkload = "petrel.dev/workload"
	// AnnotationSpec holds the petrel spec (JSON, secret values masked) on
	// the Job or Deployment, so get/describe show the spec as written.
	AnnotationSpec = "petrel.dev/spec"
	// FieldManager is the server-side apply field manager.
	FieldManager = "petrel"
	// ContainerName is the name of the workload's container in every pod.
	ContainerName = "main"
	// InflightMetric is the Pods metric a concurrency target scales on; it
	// must be served by a custom-metrics adapter (see the README).
	InflightMetric = "petrel_inflight_requests"
	// DefaultVolumeSize is the storage request of a Volume without size.
	DefaultVolumeSize = "1Gi"
	// MaskedValue replaces secret values wherever petrel prints them.
	MaskedValue = v1alpha1.SecretMask
)

// Ref kinds as they appear in LabelKind and backend.Ref.Kind.
const (
	KindJob     = "job"
	KindService = "service"
	KindVolume  = "volume"
)

// Object is one rendered Kubernetes object (apiVersion and kind set).
type Object interface {
	runtime.Object
	metav1.Object
}

// Options controls rendering.
type Options struct {
	// Namespace, when set, is put on every object, overriding the spec's
	// metadata.namespace (kubectl's -n). Empty keeps the spec's namespace,
	// or none (kubectl's current namespace then applies).
	Namespace string
	// IncludeSecretValues renders a Secret holding the values of env vars
	// marked secret. When false (the default for `petrel render`) the
	// Secret is left out and a note says how to create it, so secret
	// values are never printed; the workload still references it.
	IncludeSecretValues bool
}

// Set is the result of rendering: objects in apply order (Secrets,
// ConfigMaps and PersistentVolumeClaims before the workloads that use
// them) and notes about what could not be expressed natively.
type Set struct {
	Objects []Object
	// Notes are one-sentence facts for the user (printed as YAML comments
	// by `petrel render`).
	Notes []string
}

// Render turns spec documents into Kubernetes objects. It returns a
// spec.ErrorList (file:line:col) when a document cannot run on Kubernetes,
// e.g. a workload without spec.image, or a volume source that cannot be read.
func Render(docs []*spec.Document, opts Options) (*Set, error) {
	r := &renderer{opts: opts, set: &Set{}, volumes: map[string]*volumeInfo{}}
	// Volumes first: workloads that mount them need their seed data.
	for _, d := range docs {
		if v, ok := d.Object.(*v1alpha1.Volume); ok {
			r.volume(d, v)
		}
	}
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *v1alpha1.TrainingJob:
			r.trainingJob(d, o)
		case *v1alpha1.InferenceService:
			r.inferenceService(d, o)
		}
	}
	if len(r.errs) > 0 {
		return nil, r.errs
	}
	sort.SliceStable(r.set.Objects, func(i, j int) bool {
		return applyOrder(r.set.Objects[i]) < applyOrder(r.set.Objects[j])
	})
	return r.set, nil
}

func applyOrder(o Object) int {
	switch o.(type) {
	case *corev1.Secret, *corev1.ConfigMap:
		return 0
	case *corev1.PersistentVolumeClaim:
		return 1
	default:
		return 2
	}
}

type renderer struct {
	opts    Options
	set     *Set
	errs    spec.ErrorList
	volumes map[string]*volumeInfo
}

// volumeInfo is what a workload mounting a declared volume needs to know.
type volumeInfo struct {
	seed *seedData // nil when the volume has no (usable) source
}

func (r *renderer) fail(d *spec.Document, path, fix, format string, args ...any) {
	r.errs = append(r.errs, &spec.FieldError{File: d.File, Pos: d.PosOf(path), Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

func (r *renderer) add(o Object) { r.set.Objects = append(r.set.Objects, o) }

func (r *renderer) note(format string, args ...any) {
	r.set.Notes = append(r.set.Notes, fmt.Sprintf(format, args...))
}

// Selector returns the labels that select exactly the objects (and pods)
// petrel made for one workload or volume: managed-by, kind and workload.
func Selector(kind, name string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelKind: kind, LabelWorkload: name}
}

// SelectorString is Selector as a label selector string.
func SelectorString(kind, name string) string {
	return fmt.Sprintf("%s=%s,%s=%s,%s=%s", LabelManagedBy, ManagedBy, LabelKind, kind, LabelWorkload, name)
}

// objectMeta builds the metadata of one rendered object: the spec's labels
// and annotations, then petrel's labels (which win on a clash).
func (r *renderer) objectMeta(m *v1alpha1.ObjectMeta, kind, name string) metav1.ObjectMeta {
	labels := map[string]string{}
	for k, v := range m.Labels {
		labels[k] = v
	}
	labels[LabelName] = m.Name
	for k, v := range Selector(kind, m.Name) {
		labels[k] = v
	}
	var ann map[string]string
	if len(m.Annotations) > 0 {
		ann = map[string]string{}
		for k, v := range m.Annotations {
			ann[k] = v
		}
	}
	ns := r.opts.Namespace
	if ns == "" {
		ns = m.Namespace
	}
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: ann}
}

func withSpecAnnotation(om metav1.ObjectMeta, specValue any) metav1.ObjectMeta {
	b, err := json.Marshal(specValue)
	if err != nil {
		return om // the spec types always marshal; nothing to annotate otherwise
	}
	if om.Annotations == nil {
		om.Annotations = map[string]string{}
	}
	om.Annotations[AnnotationSpec] = string(b)
	return om
}

// SecretName is the name of the Secret holding a workload's secret env
// values: NAME-job-env or NAME-service-env.
func SecretName(kind, name string) string { return name + "-" + kind + "-env" }

func (r *renderer) volume(d *spec.Document, v *v1alpha1.Volume) {
	om := r.objectMeta(&v.Metadata, KindVolume, v.Metadata.Name)
	size := resource.MustParse(DefaultVolumeSize)
	if v.Spec.Size != nil {
		size = *v.Spec.Size
	} else {
		r.note("Volume %s has no spec.size; the PersistentVolumeClaim requests %s.", v.Metadata.Name, DefaultVolumeSize)
	}
	modes := v.Spec.AccessModes
	if len(modes) == 0 {
		modes = []string{string(corev1.ReadWriteOnce)}
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: om,
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: v.Spec.StorageClassName,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
		},
	}
	for _, m := range modes {
		pvc.Spec.AccessModes = append(pvc.Spec.AccessModes, corev1.PersistentVolumeAccessMode(m))
	}
	r.add(pvc)
	info := &volumeInfo{}
	r.volumes[v.Metadata.Name] = info
	if v.Spec.Source != "" {
		r.seed(d, v, om, info)
	}
}

// podParts is what TrainingJob and InferenceService pods have in common.
type podParts struct {
	kind, name string
	image      string
	command    []string
	args       []string
	env        []v1alpha1.EnvVar
	workingDir string
	resources  v1alpha1.Resources
	mounts     []v1alpha1.VolumeMount
	grace      *int64
	security   *v1alpha1.SecurityContext
}

// podSpec renders the pod template shared by Jobs and Deployments: the
// container, its env (secret values through a Secret), resources (CPU and
// memory as requests = limits, GPUs under limits), the GPU toleration and
// /dev/shm, and the volumes with their pathEnv variables.
func (r *renderer) podSpec(d *spec.Document, meta *v1alpha1.ObjectMeta, p podParts) corev1.PodSpec {
	if p.image == "" {
		r.fail(d, "spec.image", "set spec.image to a container image that holds the program and its dependencies, e.g. python:3.12-slim",
			"spec.image is required on Kubernetes")
	}
	c := corev1.Container{
		Name:    ContainerName,
		Image:   p.image,
		Command: p.command,
		Args:    p.args,
	}
	if p.workingDir != "" {
		if path.IsAbs(p.workingDir) {
			c.WorkingDir = p.workingDir
		} else {
			r.note("%s %s: workingDir %q is relative to the spec file on the local engine; on Kubernetes the image's working directory is used (set an absolute workingDir to choose one).",
				kindTitle(p.kind), p.name, p.workingDir)
		}
	}
	// pathEnv variables come first so user env can refer to them as $(VAR).
	for _, m := range p.mounts {
		if m.PathEnv != "" {
			c.Env = append(c.Env, corev1.EnvVar{Name: m.PathEnv, Value: m.MountPath})
		}
	}
	secretData := map[string][]byte{}
	secretName := SecretName(p.kind, p.name)
	var secretKeys []string
	for _, e := range p.env {
		if !e.Secret {
			c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
			continue
		}
		secretData[e.Name] = []byte(e.Value)
		secretKeys = append(secretKeys, e.Name)
		c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: e.Name},
		}})
	}
	if len(secretData) > 0 {
		if r.opts.IncludeSecretValues {
			r.add(&corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: r.objectMeta(meta, p.kind, secretName),
				Type:       corev1.SecretTypeOpaque,
				Data:       secretData,
			})
		} else {
			var lit []string
			for _, k := range secretKeys {
				lit = append(lit, fmt.Sprintf("--from-literal=%s=...", k))
			}
			r.note("Secret %s is not printed (it holds secret values); create it before applying: kubectl create secret generic %s %s, then label it %s so petrel delete removes it.",
				secretName, secretName, strings.Join(lit, " "), SelectorString(p.kind, p.name))
		}
	}

	res := p.resources
	if res.CPU != nil || res.Memory != nil || res.GPU > 0 {
		c.Resources.Limits = corev1.ResourceList{}
	}
	if res.CPU != nil || res.Memory != nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	if res.CPU != nil {
		c.Resources.Requests[corev1.ResourceCPU] = *res.CPU
		c.Resources.Limits[corev1.ResourceCPU] = *res.CPU
	}
	if res.Memory != nil {
		c.Resources.Requests[corev1.ResourceMemory] = *res.Memory
		c.Resources.Limits[corev1.ResourceMemory] = *res.Memory
	}
	ps := corev1.PodSpec{TerminationGracePeriodSeconds: p.grace}
	if sc := p.security; sc != nil {
		ps.SecurityContext = &corev1.PodSecurityContext{RunAsUser: sc.RunAsUser, RunAsGroup: sc.RunAsGroup, FSGroup: sc.FSGroup}
	}
	if res.GPU > 0 {
		gpu := corev1.ResourceName(res.GPUName())
		c.Resources.Limits[gpu] = *resource.NewQuantity(int64(res.GPU), resource.DecimalSI)
		ps.Tolerations = []corev1.Toleration{{Key: string(gpu), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		// Frameworks share tensors between data-loader workers through
		// /dev/shm; the container runtime's default is 64 MiB.
		ps.Volumes = append(ps.Volumes, corev1.Volume{Name: "petrel-shm", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "petrel-shm", MountPath: "/dev/shm"})
	}
	for _, m := range p.mounts {
		ps.Volumes = append(ps.Volumes, corev1.Volume{Name: m.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: m.Name},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: m.Name, MountPath: m.MountPath, ReadOnly: m.ReadOnly})
		if info := r.volumes[m.Name]; info != nil && info.seed != nil {
			info.seed.addTo(&ps, m.Name)
		}
	}
	ps.Containers = []corev1.Container{c}
	return ps
}

func hasEnv(env []v1alpha1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

func kindTitle(kind string) string {
	switch kind {
	case KindJob:
		return v1alpha1.KindTrainingJob
	case KindService:
		return v1alpha1.KindInferenceService
	}
	return v1alpha1.KindVolume
}

func (r *renderer) trainingJob(d *spec.Document, j *v1alpha1.TrainingJob) {
	s := &j.Spec
	ps := r.podSpec(d, &j.Metadata, podParts{
		kind: KindJob, name: j.Metadata.Name, image: s.Image, command: s.Command, args: s.Args, env: s.Env,
		workingDir: s.WorkingDir, resources: s.Resources, mounts: s.Volumes, grace: s.TerminationGracePeriodSeconds,
		security: s.SecurityContext,
	})
	ps.RestartPolicy = corev1.RestartPolicyNever
	masked := *s
	masked.Env = v1alpha1.MaskSecrets(s.Env)
	om := withSpecAnnotation(r.objectMeta(&j.Metadata, KindJob, j.Metadata.Name), masked)
	tmplMeta := r.objectMeta(&j.Metadata, KindJob, "")
	tmplMeta.Namespace = ""
	backoff := s.EffectiveBackoffLimit()
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: om,
		Spec: batchv1.JobSpec{
			BackoffLimit:            &backoff,
			ActiveDeadlineSeconds:   s.ActiveDeadlineSeconds,
			TTLSecondsAfterFinished: s.TTLSecondsAfterFinished,
			Template:                corev1.PodTemplateSpec{ObjectMeta: tmplMeta, Spec: ps},
		},
	}
	if pfp := s.PodFailurePolicy; pfp != nil && len(pfp.Rules) > 0 {
		job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
		for _, rule := range pfp.Rules {
			out := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyAction(rule.Action)}
			switch {
			case rule.OnExitCodes != nil:
				out.OnExitCodes = &batchv1.PodFailurePolicyOnExitCodesRequirement{
					Operator: batchv1.PodFailurePolicyOnExitCodesOperator(rule.OnExitCodes.Operator),
					Values:   append([]int32(nil), rule.OnExitCodes.Values...),
				}
			case len(rule.OnPodConditions) > 0:
				for _, c := range rule.OnPodConditions {
					status := corev1.ConditionTrue // batch/v1 default
					if c.Status != "" {
						status = corev1.ConditionStatus(c.Status)
					}
					out.OnPodConditions = append(out.OnPodConditions, batchv1.PodFailurePolicyOnPodConditionsPattern{
						Type: corev1.PodConditionType(c.Type), Status: status,
					})
				}
			default:
				continue // validation rejects this; nothing to render
			}
			job.Spec.PodFailurePolicy.Rules = append(job.Spec.PodFailurePolicy.Rules, out)
		}
	}
	if s.Distributed() {
		r.distribute(job, j)
	}
	r.add(job)
}

// distribute makes job a gang of spec.numNodes workers with only built-in
// objects (no operator): an Indexed Job (completions = parallelism =
// numNodes; each pod's hostname is JOB-INDEX) whose pods have a headless
// Service of the job's name as subdomain, so worker 0 resolves as
// JOB-0.JOB from every worker, ready or not (publishNotReadyAddresses:
// rendezvous happens before readiness). Each worker gets torchrun's
// environment as Kubeflow Trainer sets it (PET_NNODES, PET_NPROC_PER_NODE,
// PET_NODE_RANK, PET_MASTER_ADDR, PET_MASTER_PORT) and MASTER_ADDR,
// MASTER_PORT, WORLD_SIZE, NODE_RANK (and RANK with one process per
// worker) for programs that do their own rendezvous; the Job controller
// adds JOB_COMPLETION_INDEX. Fail fast: a podFailurePolicy rule after the
// spec's own fails the whole Job at the first worker that exits non-zero,
// and the Job controller deletes the other workers at once, instead of
// leaving them in a collective until the NCCL timeout. What a plain Job
// cannot do: restart the whole gang (JobSet's failurePolicy does), so on
// Kubernetes a worker failure ends the job; the README says so.
func (r *renderer) distribute(job *batchv1.Job, j *v1alpha1.TrainingJob) {
	s := &j.Spec
	name := j.Metadata.Name
	n := s.Workers()
	indexed := batchv1.IndexedCompletion
	job.Spec.CompletionMode = &indexed
	job.Spec.Completions, job.Spec.Parallelism = &n, &n
	ps := &job.Spec.Template.Spec
	ps.Subdomain = name
	master := fmt.Sprintf("%s-0.%s", name, name)
	rank := &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']"}}
	var env []corev1.EnvVar
	for _, v := range s.RendezvousEnv(master, v1alpha1.DefaultMasterPort) {
		if v.WorkerIndex {
			env = append(env, corev1.EnvVar{Name: v.Name, ValueFrom: rank})
		} else {
			env = append(env, corev1.EnvVar{Name: v.Name, Value: v.Value})
		}
	}
	c := &ps.Containers[0]
	c.Env = append(env, c.Env...)
	c.Ports = append(c.Ports, corev1.ContainerPort{Name: "rendezvous", ContainerPort: v1alpha1.DefaultMasterPort, Protocol: corev1.ProtocolTCP})
	if job.Spec.PodFailurePolicy == nil {
		job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
	}
	// A worker stopped by a disruption (eviction, preemption, `petrel
	// preempt`) has the DisruptionTarget condition; an Ignore rule on it,
	// before the fail-fast rule, keeps it from failing the Job (the Job
	// controller's first matching rule wins: matchPodFailurePolicy).
	if !hasDisruptionRule(s.PodFailurePolicy) {
		job.Spec.PodFailurePolicy.Rules = append(job.Spec.PodFailurePolicy.Rules, batchv1.PodFailurePolicyRule{
			Action:          batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
		})
	}
	job.Spec.PodFailurePolicy.Rules = append(job.Spec.PodFailurePolicy.Rules, batchv1.PodFailurePolicyRule{
		Action:      batchv1.PodFailurePolicyActionFailJob,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{0}},
	})
	r.add(&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: r.objectMeta(&j.Metadata, KindJob, name),
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			Selector:                 Selector(KindJob, name),
			PublishNotReadyAddresses: true,
			Ports: []corev1.ServicePort{{
				Name: "rendezvous", Port: v1alpha1.DefaultMasterPort,
				TargetPort: intstr.FromInt32(v1alpha1.DefaultMasterPort), Protocol: corev1.ProtocolTCP,
			}},
		},
	})
	r.note("TrainingJob %s runs %d workers as an Indexed Job: worker 0 is %s:%d; the first worker to fail fails the Job (a plain Job cannot restart the whole gang); an evicted or preempted worker (DisruptionTarget) is ignored and the Job controller re-creates only that index, not the gang.", name, n, master, v1alpha1.DefaultMasterPort)
}

// hasDisruptionRule reports whether the spec's podFailurePolicy already has
// a rule on the DisruptionTarget pod condition, in which case the user's
// rule decides and distribute adds no Ignore rule of its own.
func hasDisruptionRule(pfp *v1alpha1.PodFailurePolicy) bool {
	if pfp == nil {
		return false
	}
	for _, rule := range pfp.Rules {
		for _, c := range rule.OnPodConditions {
			if c.Type == v1alpha1.PodConditionDisruptionTarget {
				return true
			}
		}
	}
	return false
}

func (r *renderer) inferenceService(d *spec.Document, is *v1alpha1.InferenceService) {
	s := &is.Spec
	name := is.Metadata.Name
	ps := r.podSpec(d, &is.Metadata, podParts{
		kind: KindService, name: name, image: s.Image, command: s.Command, args: s.Args, env: s.Env,
		workingDir: s.WorkingDir, resources: s.Resources, mounts: s.Volumes, grace: s.TerminationGracePeriodSeconds,
		security: s.SecurityContext,
	})
	c := &ps.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: s.Port, Protocol: corev1.ProtocolTCP}}
	// The local engine publishes each replica's port as $(PORT); on
	// Kubernetes every replica listens on spec.port, so PORT holds that.
	if !hasEnv(s.Env, "PORT") {
		c.Env = append([]corev1.EnvVar{{Name: "PORT", Value: fmt.Sprint(s.Port)}}, c.Env...)
	}
	c.ReadinessProbe = probe(s.ReadinessProbe, s.Port)
	c.LivenessProbe = probe(s.LivenessProbe, s.Port)
	c.StartupProbe = probe(s.StartupProbe, s.Port)

	masked := *s
	masked.Env = v1alpha1.MaskSecrets(s.Env)
	om := withSpecAnnotation(r.objectMeta(&is.Metadata, KindService, name), masked)
	tmplMeta := r.objectMeta(&is.Metadata, KindService, "")
	tmplMeta.Namespace = ""
	sel := Selector(KindService, name)

	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: om,
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: tmplMeta, Spec: ps},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
		},
	}
	// With autoscaling the HPA owns the replica count: leaving replicas out
	// of the applied configuration keeps a re-apply from resetting it.
	if s.Autoscaling == nil {
		replicas := int32(1)
		if s.Replicas != nil {
			replicas = *s.Replicas
		}
		dep.Spec.Replicas = &replicas
	}
	if st := s.Strategy; st != nil && (st.MaxSurge != "" || st.MaxUnavailable != "") {
		ru := &appsv1.RollingUpdateDeployment{}
		if st.MaxSurge != "" {
			v := intOrPercent(st.MaxSurge)
			ru.MaxSurge = &v
		}
		if st.MaxUnavailable != "" {
			v := intOrPercent(st.MaxUnavailable)
			ru.MaxUnavailable = &v
		}
		dep.Spec.Strategy.RollingUpdate = ru
	}
	r.add(dep)

	r.add(&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: r.objectMeta(&is.Metadata, KindService, name),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: sel,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: s.Port, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	})

	if a := s.Autoscaling; a != nil {
		r.add(hpa(r.objectMeta(&is.Metadata, KindService, name), name, a))
		if a.Target.Concurrency != nil {
			r.note("InferenceService %s scales on concurrency: the HorizontalPodAutoscaler reads the Pods metric %s, which needs a custom-metrics adapter (e.g. Prometheus Adapter) serving it from a per-pod in-flight request gauge; without one the HPA reports FailedGetPodsMetric and keeps the current replica count.",
				name, InflightMetric)
		}
	}
}

// hpa renders an autoscaling/v2 HorizontalPodAutoscaler for the Deployment
// of the same name: CPU utilisation as a Resource metric, concurrency as a
// Pods metric (AverageValue) named InflightMetric.
func hpa(om metav1.ObjectMeta, name string, a *v1alpha1.Autoscaling) *autoscalingv2.HorizontalPodAutoscaler {
	h := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: om,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    a.MinReplicas,
			MaxReplicas:    a.MaxReplicas,
		},
	}
	switch t := a.Target; {
	case t.CPUUtilization != nil:
		h.Spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: t.CPUUtilization},
			},
		}}
	case t.Concurrency != nil:
		q := resource.NewQuantity(int64(*t.Concurrency), resource.DecimalSI)
		h.Spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.PodsMetricSourceType,
			Pods: &autoscalingv2.PodsMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: InflightMetric},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q},
			},
		}}
	}
	// No behavior is rendered for a spec without one: the HPA controller
	// then takes its normalizeDesiredReplicas path (scale-up at most
	// max(2 × current, 4) per sync, scale-down held by the controller's
	// 5 min window), which is what the local engine does for the same spec
	// (serving.ReconcileHPA). No explicit behavior could say the same:
	// policies add to the replicas at the start of their period ("100 % or
	// 4 pods per 15 s" allows 3 → 7 where the legacy limit allows 3 → 6),
	// none can say "at least 4 in all", and the legacy limit has no period
	// (it may double again on the next sync). A spec with
	// a behavior is rendered field for field, and the API server fills in
	// the autoscaling/v2 defaults the local engine applies too.
	if b := a.Behavior; b != nil {
		h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: scalingRules(b.ScaleUp), ScaleDown: scalingRules(b.ScaleDown)}
	}
	return h
}

func scalingRules(r *v1alpha1.ScalingRules) *autoscalingv2.HPAScalingRules {
	if r == nil {
		return nil
	}
	out := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: r.StabilizationWindowSeconds}
	if r.Tolerance != nil {
		tol := r.Tolerance.DeepCopy()
		out.Tolerance = &tol
	}
	if r.SelectPolicy != "" {
		sp := autoscalingv2.ScalingPolicySelect(r.SelectPolicy)
		out.SelectPolicy = &sp
	}
	for _, p := range r.Policies {
		out.Policies = append(out.Policies, autoscalingv2.HPAScalingPolicy{
			Type: autoscalingv2.HPAScalingPolicyType(p.Type), Value: p.Value, PeriodSeconds: p.PeriodSeconds,
		})
	}
	return out
}

// probe maps a petrel probe to core/v1 with an httpGet handler on the
// probe's port or, by default, the service port. Zero fields are left out
// so the kubelet's defaults apply, as they do locally.
func probe(p *v1alpha1.Probe, port int32) *corev1.Probe {
	if p == nil {
		return nil
	}
	if p.HTTPGet.Port != 0 {
		port = p.HTTPGet.Port
	}
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: p.HTTPGet.Path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
		}},
		InitialDelaySeconds: p.InitialDelaySeconds,
		PeriodSeconds:       p.PeriodSeconds,
		TimeoutSeconds:      p.TimeoutSeconds,
		FailureThreshold:    p.FailureThreshold,
		SuccessThreshold:    p.SuccessThreshold,
	}
}

// intOrPercent turns "25%" into a string IntOrString and "1" into an int,
// as apps/v1 expects (validation has checked the form).
func intOrPercent(s string) intstr.IntOrString {
	if v, err := spec.ParseIntOrPercent(s); err == nil && !v.Percent {
		return intstr.FromInt32(int32(v.Value))
	}
	return intstr.FromString(s)
}
