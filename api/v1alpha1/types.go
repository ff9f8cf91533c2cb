// Package v1alpha1 holds the Go types of petrel's workload spec
// (apiVersion petrel.dev/v1alpha1): TrainingJob, InferenceService and Volume.
//
// Field names follow Kubernetes wherever Kubernetes has the concept; each
// field's doc comment names the Kubernetes field it mirrors. The doc comments
// are the reference for users.
package v1alpha1

import (
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// APIVersion is the only apiVersion petrel accepts.
const APIVersion = "petrel.dev/v1alpha1"

// Kinds petrel understands.
const (
	KindTrainingJob      = "TrainingJob"
	KindInferenceService = "InferenceService"
	KindVolume           = "Volume"
)

// DefaultBackoffLimit mirrors batch/v1 JobSpec.backoffLimit's default (6).
const DefaultBackoffLimit int32 = 6

// DefaultGPUResourceName is the extended resource name NVIDIA's device plugin
// advertises; used when resources.gpuResourceName is empty.
const DefaultGPUResourceName = "nvidia.com/gpu"

// DefaultTerminationGracePeriodSeconds mirrors PodSpec's default (30 s).
const DefaultTerminationGracePeriodSeconds int64 = 30

// Object is any top-level petrel object.
type Object interface {
	GetKind() string
	GetName() string
	// GetMeta returns the object's metadata for reading and defaulting.
	GetMeta() *ObjectMeta
}

// TypeMeta is apiVersion and kind, as in Kubernetes.
type TypeMeta struct {
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	Kind       string `yaml:"kind" json:"kind"`
}

// ObjectMeta is the subset of Kubernetes ObjectMeta petrel uses.
type ObjectMeta struct {
	// Name is a DNS-1123 label (lower-case alphanumerics and '-', at most 63
	// characters, starting and ending with an alphanumeric), as Kubernetes
	// requires for Job and Service names.
	Name string `yaml:"name" json:"name"`
	// Namespace is used only on the Kubernetes target; -n overrides it.
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// Labels are copied onto every object petrel creates for the workload.
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Annotations are copied as labels are; `petrel.dev/lint-disable: RULE,…`
	// switches lint rules off for this object.
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// EnvVar is one environment variable, as core/v1 EnvVar (value only; $(VAR)
// references to earlier variables are expanded as the kubelet does).
type EnvVar struct {
	Name  string `yaml:"name" json:"name"`
	Value string `yaml:"value" json:"value"`
	// Secret marks a value that must never be printed: petrel masks it in
	// describe, render and logs of its own. On Kubernetes it is rendered into
	// a Secret referenced with valueFrom.secretKeyRef.
	Secret bool `yaml:"secret,omitempty" json:"secret,omitempty"`
}

// Resources is what one attempt or replica asks for. CPU and memory are
// Kubernetes quantities ("500m", "2", "4Gi"); on Kubernetes they are rendered
// as both request and limit (Guaranteed QoS), locally they become cgroup
// limits where the host allows it.
type Resources struct {
	// CPU in cores, e.g. "500m" (0.5 core) or "2".
	CPU *resource.Quantity `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	// Memory in bytes, e.g. "512Mi", "4Gi". Exceeding it is an OOM kill.
	Memory *resource.Quantity `yaml:"memory,omitempty" json:"memory,omitempty"`
	// GPU is the number of whole GPUs (extended resources cannot be
	// fractional), rendered under limits on Kubernetes.
	GPU int32 `yaml:"gpu,omitempty" json:"gpu,omitempty"`
	// GPUResourceName is the extended resource name; default nvidia.com/gpu.
	GPUResourceName string `yaml:"gpuResourceName,omitempty" json:"gpuResourceName,omitempty"`
}

// GPUName returns the GPU extended resource name with its default applied.
func (r Resources) GPUName() string {
	if r.GPUResourceName == "" {
		return DefaultGPUResourceName
	}
	return r.GPUResourceName
}

// VolumeMount mounts a declared Volume into the workload, as core/v1
// VolumeMount. PathEnv names an environment variable that holds the path
// the volume is reachable at: mountPath on Kubernetes, the volume's local
// directory on the local engine, so `$(DATA_DIR)/digits.csv` works on both.
type VolumeMount struct {
	Name      string `yaml:"name" json:"name"`
	MountPath string `yaml:"mountPath" json:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly,omitempty" json:"readOnly,omitempty"`
	PathEnv   string `yaml:"pathEnv,omitempty" json:"pathEnv,omitempty"`
}

// PodFailurePolicyAction mirrors batch/v1 PodFailurePolicyAction.
type PodFailurePolicyAction string

// Actions, as batch/v1.
const (
	// PodFailurePolicyActionFailJob fails the job at once (reason PodFailurePolicy).
	PodFailurePolicyActionFailJob PodFailurePolicyAction = "FailJob"
	// PodFailurePolicyActionIgnore retries without counting against backoffLimit.
	PodFailurePolicyActionIgnore PodFailurePolicyAction = "Ignore"
	// PodFailurePolicyActionCount counts the failure against backoffLimit (the default).
	PodFailurePolicyActionCount PodFailurePolicyAction = "Count"
)

// PodFailurePolicy mirrors batch/v1 PodFailurePolicy: rules are evaluated in
// order and the first that matches a failed attempt's exit code decides.
type PodFailurePolicy struct {
	Rules []PodFailurePolicyRule `yaml:"rules" json:"rules"`
}

// PodFailurePolicyRule mirrors batch/v1 PodFailurePolicyRule: exactly one
// of onExitCodes and onPodConditions is set.
type PodFailurePolicyRule struct {
	Action      PodFailurePolicyAction                  `yaml:"action" json:"action"`
	OnExitCodes *PodFailurePolicyOnExitCodesRequirement `yaml:"onExitCodes,omitempty" json:"onExitCodes,omitempty"`
	// OnPodConditions matches a failed pod that has any of these
	// conditions (batch/v1; in practice DisruptionTarget, which the
	// eviction API, preemption and `petrel preempt` set).
	OnPodConditions []PodFailurePolicyOnPodConditionsPattern `yaml:"onPodConditions,omitempty" json:"onPodConditions,omitempty"`
}

// PodFailurePolicyOnPodConditionsPattern mirrors batch/v1: a pod
// condition type and its status (default True).
type PodFailurePolicyOnPodConditionsPattern struct {
	Type   string `yaml:"type" json:"type"`
	Status string `yaml:"status,omitempty" json:"status,omitempty"`
}

// Match returns the index of the first rule that matches a failed pod, or
// -1 (matchPodFailurePolicy in pkg/controller/job/pod_failure_policy.go):
// rules in order, onExitCodes against the main container's exit code
// (nil: none recorded), onPodConditions through hasCondition(type,
// status), the pattern's status defaulting to True.
func (p *PodFailurePolicy) Match(exitCode *int32, hasCondition func(typ, status string) bool) int {
	if p == nil {
		return -1
	}
	for i, r := range p.Rules {
		switch {
		case r.OnExitCodes != nil:
			if exitCode != nil && r.OnExitCodes.Matches(*exitCode) {
				return i
			}
		case len(r.OnPodConditions) > 0:
			for _, c := range r.OnPodConditions {
				status := c.Status
				if status == "" {
					status = "True"
				}
				if hasCondition(c.Type, status) {
					return i
				}
			}
		}
	}
	return -1
}

// PodConditionDisruptionTarget is the pod condition type set on a pod
// stopped by a disruption (core/v1 DisruptionTarget): eviction,
// preemption, `petrel preempt`.
const PodConditionDisruptionTarget = "DisruptionTarget"

// PodFailurePolicyOnExitCodesRequirement mirrors batch/v1: operator In or
// NotIn over a set of exit codes; exit code 0 may not be listed with In.
type PodFailurePolicyOnExitCodesRequirement struct {
	Operator string  `yaml:"operator" json:"operator"`
	Values   []int32 `yaml:"values" json:"values"`
}

// Matches reports whether exitCode satisfies the requirement.
func (r *PodFailurePolicyOnExitCodesRequirement) Matches(exitCode int32) bool {
	in := false
	for _, v := range r.Values {
		if v == exitCode {
			in = true
			break
		}
	}
	if r.Operator == "NotIn" {
		return !in
	}
	return in
}

// TrainingJob runs a command to completion with retries: a batch/v1 Job on
// Kubernetes (restartPolicy Never), a series of attempts locally.
type TrainingJob struct {
	TypeMeta `yaml:",inline" json:",inline"`
	Metadata ObjectMeta      `yaml:"metadata" json:"metadata"`
	Spec     TrainingJobSpec `yaml:"spec" json:"spec"`
}

// PodTemplate is what one process of a workload runs with: a training
// job's attempt or a service's replica, a pod on Kubernetes (core/v1
// PodSpec's single container "main" and the pod-level fields petrel uses).
// TrainingJob and InferenceService embed it inline, so the YAML stays flat.
// The local engine's pod layer (internal/engine/node) is the only code
// that turns it into a process; internal/kube renders it as a PodSpec.
type PodTemplate struct {
	// Image is the container image used on Kubernetes; recorded locally.
	Image string `yaml:"image,omitempty" json:"image,omitempty"`
	// Command and Args are argv, never passed through a shell, with
	// Kubernetes $(VAR) expansion ($$ escapes a literal $).
	Command []string `yaml:"command" json:"command"`
	Args    []string `yaml:"args,omitempty" json:"args,omitempty"`
	Env     []EnvVar `yaml:"env,omitempty" json:"env,omitempty"`
	// WorkingDir is the container's working directory; locally it is
	// resolved relative to the spec file's directory.
	WorkingDir string        `yaml:"workingDir,omitempty" json:"workingDir,omitempty"`
	Resources  Resources     `yaml:"resources,omitempty" json:"resources,omitempty"`
	Volumes    []VolumeMount `yaml:"volumes,omitempty" json:"volumes,omitempty"`
	// TerminationGracePeriodSeconds is the time between SIGTERM and SIGKILL
	// when a process is stopped (core/v1, default 30; the kubelet waits at
	// least 2 s, minimumGracePeriodInSeconds).
	TerminationGracePeriodSeconds *int64           `yaml:"terminationGracePeriodSeconds,omitempty" json:"terminationGracePeriodSeconds,omitempty"`
	SecurityContext               *SecurityContext `yaml:"securityContext,omitempty" json:"securityContext,omitempty"`
}

// EffectiveGracePeriod returns terminationGracePeriodSeconds with its default applied.
func (p *PodTemplate) EffectiveGracePeriod() int64 {
	if p.TerminationGracePeriodSeconds == nil {
		return DefaultTerminationGracePeriodSeconds
	}
	return *p.TerminationGracePeriodSeconds
}

// MinimumGracePeriodSeconds is the least time the kubelet waits between
// SIGTERM and SIGKILL, whatever the spec says (minimumGracePeriodInSeconds
// in pkg/kubelet/kuberuntime/kuberuntime_manager.go, applied in
// killContainer).
const MinimumGracePeriodSeconds = 2

// KillGracePeriod is how long a stopped process gets between SIGTERM and
// SIGKILL: terminationGracePeriodSeconds (default 30), at least the
// kubelet's 2 s minimum.
func (p *PodTemplate) KillGracePeriod() time.Duration {
	return time.Duration(max(p.EffectiveGracePeriod(), MinimumGracePeriodSeconds)) * time.Second
}

// TrainingJobSpec is the desired state of a TrainingJob.
type TrainingJobSpec struct {
	PodTemplate `yaml:",inline" json:",inline"`
	// BackoffLimit is the number of failed attempts tolerated before the job
	// fails with BackoffLimitExceeded (batch/v1 backoffLimit, default 6):
	// at most backoffLimit+1 attempts run.
	BackoffLimit *int32 `yaml:"backoffLimit,omitempty" json:"backoffLimit,omitempty"`
	// ActiveDeadlineSeconds bounds the job's whole run time in seconds,
	// counted from its start (batch/v1: the Job's startTime, set before its
	// pod is scheduled, so time spent waiting for GPUs counts); on expiry
	// the running attempt is killed and the job fails with DeadlineExceeded.
	ActiveDeadlineSeconds *int64 `yaml:"activeDeadlineSeconds,omitempty" json:"activeDeadlineSeconds,omitempty"`
	// PodFailurePolicy decides per exit code whether a failure fails the job
	// at once, is ignored or counts (batch/v1 podFailurePolicy).
	PodFailurePolicy *PodFailurePolicy `yaml:"podFailurePolicy,omitempty" json:"podFailurePolicy,omitempty"`
	// TTLSecondsAfterFinished deletes the finished job's record (not its
	// volumes) this many seconds after it finishes (batch/v1).
	TTLSecondsAfterFinished *int32 `yaml:"ttlSecondsAfterFinished,omitempty" json:"ttlSecondsAfterFinished,omitempty"`
	// NumNodes is the number of workers of a distributed job (Kubeflow
	// Trainer's TrainJob numNodes; default 1): on Kubernetes an Indexed Job
	// with completions = parallelism = numNodes and a headless Service the
	// pods' subdomain, each worker with the template's resources (GPUs per
	// worker) and torchrun's environment (PET_NNODES, PET_NODE_RANK, …).
	NumNodes *int32 `yaml:"numNodes,omitempty" json:"numNodes,omitempty"`
	// NumProcPerNode is how many processes each worker runs (torchrun's
	// --nproc-per-node, published as PET_NPROC_PER_NODE; default 1). The
	// command starts them (torchrun does); petrel runs one per worker.
	NumProcPerNode *int32 `yaml:"numProcPerNode,omitempty" json:"numProcPerNode,omitempty"`
	// Metrics names the metrics the job reports (as Katib's
	// objective.additionalMetricNames): only NAME=number pairs with these
	// names are metrics; other such output (say CUDA_VISIBLE_DEVICES=0)
	// is not. Empty: every NAME=number pair is.
	Metrics []string `yaml:"metrics,omitempty" json:"metrics,omitempty"`
}

// GetKind implements Object.
func (j *TrainingJob) GetKind() string { return KindTrainingJob }

// GetName implements Object.
func (j *TrainingJob) GetName() string { return j.Metadata.Name }

// GetMeta implements Object.
func (j *TrainingJob) GetMeta() *ObjectMeta { return &j.Metadata }

// MaxNumNodes bounds numNodes (workers of one job).
const MaxNumNodes = 1024

// DefaultMasterPort is the rendezvous port of worker 0 (torchrun's
// --master-port default, 29500).
const DefaultMasterPort = 29500

// Workers returns numNodes with its default (1) applied.
func (s *TrainingJobSpec) Workers() int32 {
	if s.NumNodes == nil {
		return 1
	}
	return *s.NumNodes
}

// ProcsPerWorker returns numProcPerNode with its default (1) applied.
func (s *TrainingJobSpec) ProcsPerWorker() int32 {
	if s.NumProcPerNode == nil {
		return 1
	}
	return *s.NumProcPerNode
}

// RendezvousVar is one variable of a worker's rendezvous environment.
type RendezvousVar struct {
	Name  string
	Value string
	// WorkerIndex: the value is the worker's index (its node rank), which
	// the local engine writes as a number and a Kubernetes pod reads from
	// its completion-index annotation.
	WorkerIndex bool
}

// RendezvousEnv is the environment every worker of a distributed job gets,
// with the same names and meanings on both targets, so `torchrun train.py`
// needs no flags: torchrun's flag defaults as Kubeflow Trainer sets them
// (PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR,
// PET_MASTER_PORT; torchrun reads PET_<FLAG> for each flag), and for
// programs that do their own rendezvous MASTER_ADDR, MASTER_PORT,
// WORLD_SIZE (workers × processes per worker), NODE_RANK, and RANK with one
// process per worker (torchrun sets RANK per process otherwise).
// JOB_COMPLETION_INDEX is not here: on Kubernetes the Job controller sets
// it, and the local engine sets it as it does. masterAddr is where worker 0
// listens: 127.0.0.1 locally, JOB-0.JOB (its pod in the headless Service)
// on Kubernetes.
func (s *TrainingJobSpec) RendezvousEnv(masterAddr string, masterPort int) []RendezvousVar {
	n, procs := s.Workers(), s.ProcsPerWorker()
	port := strconv.Itoa(masterPort)
	env := []RendezvousVar{
		{Name: "PET_NNODES", Value: strconv.Itoa(int(n))},
		{Name: "PET_NPROC_PER_NODE", Value: strconv.Itoa(int(procs))},
		{Name: "PET_NODE_RANK", WorkerIndex: true},
		{Name: "PET_MASTER_ADDR", Value: masterAddr},
		{Name: "PET_MASTER_PORT", Value: port},
		{Name: "MASTER_ADDR", Value: masterAddr},
		{Name: "MASTER_PORT", Value: port},
		{Name: "WORLD_SIZE", Value: strconv.Itoa(int(n * procs))},
		{Name: "NODE_RANK", WorkerIndex: true},
	}
	if procs == 1 {
		env = append(env, RendezvousVar{Name: "RANK", WorkerIndex: true})
	}
	return env
}

// Distributed reports whether the job runs as a gang of workers with
// torchrun's environment (numNodes or numProcPerNode set above 1).
func (s *TrainingJobSpec) Distributed() bool { return s.Workers() > 1 || s.ProcsPerWorker() > 1 }

// EffectiveBackoffLimit returns backoffLimit with its default applied.
func (s *TrainingJobSpec) EffectiveBackoffLimit() int32 {
	if s.BackoffLimit == nil {
		return DefaultBackoffLimit
	}
	return *s.BackoffLimit
}

// Volume is storage that outlives workloads: a PersistentVolumeClaim on
// Kubernetes, a directory under $PETREL_HOME/volumes locally.
type Volume struct {
	TypeMeta `yaml:",inline" json:",inline"`
	Metadata ObjectMeta `yaml:"metadata" json:"metadata"`
	Spec     VolumeSpec `yaml:"spec" json:"spec"`
}

// VolumeSpec mirrors the PersistentVolumeClaim fields petrel uses.
type VolumeSpec struct {
	// Size is the requested capacity (resources.requests.storage), e.g. "1Gi".
	Size *resource.Quantity `yaml:"size,omitempty" json:"size,omitempty"`
	// AccessModes as core/v1: ReadWriteOnce, ReadOnlyMany, ReadWriteMany,
	// ReadWriteOncePod. Default [ReadWriteOnce].
	AccessModes      []string `yaml:"accessModes,omitempty" json:"accessModes,omitempty"`
	StorageClassName *string  `yaml:"storageClassName,omitempty" json:"storageClassName,omitempty"`
	// Source is a local directory (relative to the spec file) whose files
	// seed the volume when it is first created (local engine). On
	// Kubernetes the claim is created empty; see the README for seeding.
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
}

// GetKind implements Object.
func (v *Volume) GetKind() string { return KindVolume }

// GetName implements Object.
func (v *Volume) GetName() string { return v.Metadata.Name }

// GetMeta implements Object.
func (v *Volume) GetMeta() *ObjectMeta { return &v.Metadata }

// InferenceService serves a model: a Deployment + Service +
// HorizontalPodAutoscaler on Kubernetes, supervised replicas behind a local
// load balancer on the local engine.
type InferenceService struct {
	TypeMeta `yaml:",inline" json:",inline"`
	Metadata ObjectMeta           `yaml:"metadata" json:"metadata"`
	Spec     InferenceServiceSpec `yaml:"spec" json:"spec"`
}

// GetKind implements Object.
func (s *InferenceService) GetKind() string { return KindInferenceService }

// GetName implements Object.
func (s *InferenceService) GetName() string { return s.Metadata.Name }

// GetMeta implements Object.
func (s *InferenceService) GetMeta() *ObjectMeta { return &s.Metadata }

// InferenceServiceSpec is the desired state of an InferenceService.
type InferenceServiceSpec struct {
	PodTemplate `yaml:",inline" json:",inline"`
	// Port is the container port (1–65535). Locally each replica gets its
	// own free port, published to it as $(PORT), and HOST=127.0.0.1 (listen
	// on loopback only; on Kubernetes HOST is not set).
	Port int32 `yaml:"port" json:"port"`
	// Replicas is a fixed replica count (default 1); ignored when
	// autoscaling is set.
	Replicas    *int32       `yaml:"replicas,omitempty" json:"replicas,omitempty"`
	Autoscaling *Autoscaling `yaml:"autoscaling,omitempty" json:"autoscaling,omitempty"`

	ReadinessProbe *Probe `yaml:"readinessProbe,omitempty" json:"readinessProbe,omitempty"`
	LivenessProbe  *Probe `yaml:"livenessProbe,omitempty" json:"livenessProbe,omitempty"`
	StartupProbe   *Probe `yaml:"startupProbe,omitempty" json:"startupProbe,omitempty"`

	Strategy *RollingUpdate `yaml:"strategy,omitempty" json:"strategy,omitempty"`
}

// SecurityContext mirrors the core/v1 PodSecurityContext fields a workload
// needs to use its volumes: the user and group it runs as and the group
// that owns mounted volumes (fsGroup), so an image running as non-root can
// write to a fresh PersistentVolumeClaim. Rendered on Kubernetes; recorded
// and not enforced on the local engine (workloads run as the server's user).
type SecurityContext struct {
	RunAsUser  *int64 `yaml:"runAsUser,omitempty" json:"runAsUser,omitempty"`
	RunAsGroup *int64 `yaml:"runAsGroup,omitempty" json:"runAsGroup,omitempty"`
	FSGroup    *int64 `yaml:"fsGroup,omitempty" json:"fsGroup,omitempty"`
}

// Autoscaling mirrors autoscaling/v2 HorizontalPodAutoscalerSpec.
type Autoscaling struct {
	MinReplicas *int32 `yaml:"minReplicas,omitempty" json:"minReplicas,omitempty"`
	MaxReplicas int32  `yaml:"maxReplicas" json:"maxReplicas"`
	// Target is the metric target: exactly one of its fields is set.
	Target   AutoscalingTarget `yaml:"target" json:"target"`
	Behavior *ScalingBehavior  `yaml:"behavior,omitempty" json:"behavior,omitempty"`
}

// AutoscalingTarget is one metric target.
type AutoscalingTarget struct {
	// CPUUtilization is the target average CPU use in percent of the CPU
	// request (autoscaling/v2 Resource metric, averageUtilization). It needs
	// resources.cpu set.
	CPUUtilization *int32 `yaml:"cpuUtilization,omitempty" json:"cpuUtilization,omitempty"`
	// Concurrency is the target in-flight requests per replica, measured by
	// the local load balancer. On Kubernetes it needs a custom-metrics
	// adapter (e.g. a Pods metric from Prometheus Adapter).
	Concurrency *int32 `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
}

// ScalingBehavior mirrors autoscaling/v2 HorizontalPodAutoscalerBehavior.
type ScalingBehavior struct {
	ScaleUp   *ScalingRules `yaml:"scaleUp,omitempty" json:"scaleUp,omitempty"`
	ScaleDown *ScalingRules `yaml:"scaleDown,omitempty" json:"scaleDown,omitempty"`
}

// ScalingRules mirrors autoscaling/v2 HPAScalingRules.
type ScalingRules struct {
	// StabilizationWindowSeconds: scale-up default 0, scale-down 300.
	StabilizationWindowSeconds *int32 `yaml:"stabilizationWindowSeconds,omitempty" json:"stabilizationWindowSeconds,omitempty"`
	// SelectPolicy is Max (default), Min or Disabled.
	SelectPolicy string             `yaml:"selectPolicy,omitempty" json:"selectPolicy,omitempty"`
	Policies     []HPAScalingPolicy `yaml:"policies,omitempty" json:"policies,omitempty"`
	// Tolerance is the fraction of the target within which this direction
	// does not scale (autoscaling/v2 HPAScalingRules.tolerance, GA in
	// Kubernetes v1.37), e.g. 0.05 or "50m" for 5 %; 0 or more. Unset, the
	// controller's --horizontal-pod-autoscaler-tolerance (0.1) applies.
	Tolerance *resource.Quantity `yaml:"tolerance,omitempty" json:"tolerance,omitempty"`
}

// HPAScalingPolicy mirrors autoscaling/v2 HPAScalingPolicy: Type Pods or
// Percent, Value > 0, PeriodSeconds in (0, 1800].
type HPAScalingPolicy struct {
	Type          string `yaml:"type" json:"type"`
	Value         int32  `yaml:"value" json:"value"`
	PeriodSeconds int32  `yaml:"periodSeconds" json:"periodSeconds"`
}

// Probe mirrors core/v1 Probe with an httpGet handler. Defaults as the
// kubelet: periodSeconds 10, timeoutSeconds 1, failureThreshold 3,
// successThreshold 1, initialDelaySeconds 0.
type Probe struct {
	HTTPGet             HTTPGetAction `yaml:"httpGet" json:"httpGet"`
	InitialDelaySeconds int32         `yaml:"initialDelaySeconds,omitempty" json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int32         `yaml:"periodSeconds,omitempty" json:"periodSeconds,omitempty"`
	TimeoutSeconds      int32         `yaml:"timeoutSeconds,omitempty" json:"timeoutSeconds,omitempty"`
	FailureThreshold    int32         `yaml:"failureThreshold,omitempty" json:"failureThreshold,omitempty"`
	SuccessThreshold    int32         `yaml:"successThreshold,omitempty" json:"successThreshold,omitempty"`
}

// HTTPGetAction mirrors core/v1 HTTPGetAction. Port defaults to spec.port;
// locally it is mapped to the replica's own port.
type HTTPGetAction struct {
	Path string `yaml:"path" json:"path"`
	Port int32  `yaml:"port,omitempty" json:"port,omitempty"`
}

// RollingUpdate mirrors apps/v1 RollingUpdateDeployment; values are replica
// counts or percentages ("25%"), default 25% each. As intstr.IntOrString,
// a count may be written unquoted (maxSurge: 1).
type RollingUpdate struct {
	MaxSurge       string `yaml:"maxSurge,omitempty" json:"maxSurge,omitempty" petrel:"intorstring"`
	MaxUnavailable string `yaml:"maxUnavailable,omitempty" json:"maxUnavailable,omitempty" petrel:"intorstring"`
}

// SecretMask replaces secret values wherever petrel prints or returns a spec.
const SecretMask = "******"

// MaskSecrets returns a copy of env with the values of secret variables
// replaced by SecretMask; env itself is not changed.
func MaskSecrets(env []EnvVar) []EnvVar {
	if env == nil {
		return nil
	}
	out := make([]EnvVar, len(env))
	for i, e := range env {
		if e.Secret {
			e.Value = SecretMask
		}
		out[i] = e
	}
	return out
}

// MaskSecretValues replaces every secret value of env found in s with
// SecretMask (e.g. in an error message naming an expanded argument).
func MaskSecretValues(s string, env []EnvVar) string {
	for _, e := range env {
		if e.Secret && e.Value != "" {
			s = strings.ReplaceAll(s, e.Value, SecretMask)
		}
	}
	return s
}
