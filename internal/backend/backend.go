// Package backend defines the interface every petrel target implements (the
// local engine through its HTTP client, and Kubernetes) and the shared
// status vocabulary: jobs with attempts and conditions, services with
// replicas, volumes, events and findings. Every CLI command has one code
// path: it talks to a Backend.
package backend

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/spec"
)

// Backend is a place workloads run. Methods return ErrNotFound (wrapped)
// for a missing object; other errors are one sentence with the fix.
type Backend interface {
	// Apply creates or updates the objects of docs, volumes first. It
	// validates everything before changing anything.
	Apply(ctx context.Context, docs []*spec.Document) ([]Applied, error)

	// GetJob returns one training job's status.
	GetJob(ctx context.Context, name string) (*Job, error)
	// ListJobs returns every training job, oldest first.
	ListJobs(ctx context.Context) ([]Job, error)
	// WatchJob sends the job's status on every change until ctx ends or
	// the job has finished and no attempt is still stopping (the last value
	// sent is then final). The channel closes.
	WatchJob(ctx context.Context, name string) (<-chan Job, error)

	// GetService returns one inference service's status.
	GetService(ctx context.Context, name string) (*Service, error)
	// ListServices returns every inference service.
	ListServices(ctx context.Context) ([]Service, error)
	// Scale sets a service's replica count (autoscaling off until the next apply).
	Scale(ctx context.Context, name string, replicas int32) error

	// ListVolumes returns every volume.
	ListVolumes(ctx context.Context) ([]VolumeStatus, error)

	// Logs writes a workload's output to w. For a job, opts.Attempt
	// selects one attempt (0-based; -1 = every attempt, with prefixes);
	// for a service, opts.Replica selects one replica. Follow keeps
	// streaming until the workload ends or ctx is cancelled.
	Logs(ctx context.Context, ref Ref, opts LogOptions, w io.Writer) error

	// Metrics returns a job's training metrics, in the order reported.
	Metrics(ctx context.Context, name string) ([]MetricPoint, error)

	// Delete removes a workload or volume and everything the backend made
	// for it; running processes/pods are stopped first.
	Delete(ctx context.Context, ref Ref) error

	// Preempt stops the job's running pods as a disruption: locally SIGTERM
	// with the grace period and the DisruptionTarget condition; on
	// Kubernetes through the Eviction API (policy/v1). It returns an error
	// when the job does not exist or has no running pod.
	Preempt(ctx context.Context, name string) error

	// Diagnose explains what is wrong with a workload, if anything.
	Diagnose(ctx context.Context, ref Ref) ([]Finding, error)
}

// JobTableLister is implemented by backends that can list jobs faster
// when only `petrel get jobs`' table is wanted. ListJobsForTable returns
// every training job, oldest first, with what the table shows (name,
// labels, phase, attempts, failures, backoffLimit, start, completion and
// creation times); the rest (the spec beyond backoffLimit, metrics, the
// attempts' GPUs) may be missing.
type JobTableLister interface {
	ListJobsForTable(ctx context.Context) ([]Job, error)
}

// ErrNotFound is wrapped by errors for objects that do not exist.
var ErrNotFound = errors.New("not found")

// Ref names one object: Kind is "job", "service", "volume" or "pod".
type Ref struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Applied reports what Apply did to one object.
type Applied struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"` // created, configured, unchanged
}

// LogOptions selects and streams logs.
type LogOptions struct {
	Attempt int  `json:"attempt"` // -1 = all
	Replica int  `json:"replica"` // -1 = all
	Follow  bool `json:"follow"`
	// Timestamps prefixes each line with the RFC 3339 time it was written,
	// SinceSeconds keeps lines of the last N seconds, and Previous reads a
	// service replica's previous (crashed) container, as core/v1
	// PodLogOptions. Backends that do not record log times (the local
	// engine) return an error naming the option.
	Timestamps   bool  `json:"timestamps,omitempty"`
	SinceSeconds int64 `json:"sinceSeconds,omitempty"`
	Previous     bool  `json:"previous,omitempty"`
}

// Condition mirrors batch/v1 JobCondition / metav1.Condition.
type Condition struct {
	Type               string    `json:"type"`   // Complete, Failed, Available, Progressing
	Status             string    `json:"status"` // True, False
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// JobPhase summarises a job's conditions for get's STATUS column.
type JobPhase string

// Job phases.
const (
	JobPending  JobPhase = "Pending"
	JobRunning  JobPhase = "Running"
	JobComplete JobPhase = "Complete"
	JobFailed   JobPhase = "Failed"
	// JobSuspended is a Job with spec.suspend true that has not finished,
	// as kubectl get jobs shows it (a Kueue-managed Job starts suspended).
	JobSuspended JobPhase = "Suspended"
)

// PodPhase is an attempt's (a pod's) phase, as core/v1 PodPhase.
type PodPhase string

// Pod phases, as core/v1.
const (
	PodPending   PodPhase = "Pending"
	PodRunning   PodPhase = "Running"
	PodSucceeded PodPhase = "Succeeded"
	PodFailed    PodPhase = "Failed"
)

// Terminal reports whether a pod in phase p has ended.
func (p PodPhase) Terminal() bool { return p == PodSucceeded || p == PodFailed }

// Job condition types, as batch/v1 JobConditionType. FailureTarget and
// SuccessCriteriaMet are the interim conditions the v1.37 Job controller
// sets before Failed and Complete, while pods are still terminating
// (syncJob in pkg/controller/job/job_controller.go).
const (
	ConditionFailureTarget      = "FailureTarget"
	ConditionSuccessCriteriaMet = "SuccessCriteriaMet"
	ConditionComplete           = "Complete"
	ConditionFailed             = "Failed"
)

// Job condition reasons and messages, as the batch/v1 Job controller sets
// them (syncJob, newFailureCondition, newSuccessCondition in
// pkg/controller/job/job_controller.go, v1.37).
const (
	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	ReasonDeadlineExceeded     = "DeadlineExceeded"
	ReasonPodFailurePolicy     = "PodFailurePolicy"
	// ReasonCompletionsReached is the Complete condition's reason since
	// Kubernetes v1.31 (JobReasonCompletionsReached).
	ReasonCompletionsReached = "CompletionsReached"

	MessageBackoffLimitExceeded = "Job has reached the specified backoff limit"
	MessageDeadlineExceeded     = "Job was active longer than specified deadline"
	MessageCompletionsReached   = "Reached expected number of succeeded pods"
)

// Attempt termination reasons, as a container's terminated state reports them.
const (
	ReasonCompleted  = "Completed"
	ReasonError      = "Error"
	ReasonOOMKilled  = "OOMKilled"
	ReasonStartError = "StartError"
	// ReasonDeadlineExceeded is also used for an attempt killed by the deadline.
)

// WaitingReason says why a job has no running attempt although it has not
// finished.
type WaitingReason string

// Waiting reasons.
const (
	// WaitingForGPUs: not enough free GPUs on this machine (locally); the
	// pod would be Pending with PodScheduled=False on a cluster.
	WaitingForGPUs WaitingReason = "WaitingForGPUs"
	// WaitingBackOff: the Job controller's pod failure back-off before the
	// next attempt (10 s doubling, capped at 10 min).
	WaitingBackOff WaitingReason = "BackOff"
	// WaitingUnschedulable: the scheduler cannot place the pod (Kubernetes).
	WaitingUnschedulable WaitingReason = "Unschedulable"
	// WaitingContainer: the pod's container waits (ImagePullBackOff …; Kubernetes).
	WaitingContainer WaitingReason = "ContainerWaiting"
	// WaitingPending: the pod is pending for another reason (Kubernetes).
	WaitingPending WaitingReason = "Pending"
)

// Waiting is the condition of a job that waits: a reason, the numbers it
// rests on, and a message for people. Code reads the fields, never the
// message.
type Waiting struct {
	Reason  WaitingReason `json:"reason"`
	Message string        `json:"message"`
	// GPUsRequested and GPUsFree are set for WaitingForGPUs (whole devices).
	GPUsRequested int `json:"gpusRequested,omitempty"`
	GPUsFree      int `json:"gpusFree,omitempty"`
	// Until is when a BackOff ends.
	Until *time.Time `json:"until,omitempty"`
}

// String is the message.
func (w *Waiting) String() string {
	if w == nil {
		return ""
	}
	return w.Message
}

// Job is a training job's observed state.
type Job struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Labels are the object's metadata.labels (for get -l and --show-labels).
	Labels map[string]string        `json:"labels,omitempty"`
	Spec   v1alpha1.TrainingJobSpec `json:"spec"`
	// Phase is Pending, Running, Complete or Failed.
	Phase          JobPhase    `json:"phase"`
	Conditions     []Condition `json:"conditions,omitempty"`
	Attempts       []Attempt   `json:"attempts,omitempty"`
	CreationTime   time.Time   `json:"creationTime"`
	StartTime      *time.Time  `json:"startTime,omitempty"`
	CompletionTime *time.Time  `json:"completionTime,omitempty"`
	// Active, Succeeded and Failed count attempts, as batch/v1 JobStatus.
	Active    int32 `json:"active"`
	Succeeded int32 `json:"succeeded"`
	Failed    int32 `json:"failed"`
	// Waiting says why no attempt runs now (nil when running or done).
	Waiting *Waiting `json:"waiting,omitempty"`
	// Notes are facts about how the job runs, e.g. that memory limits
	// cannot be enforced on this host.
	Notes []string `json:"notes,omitempty"`
	// LastMetrics is the latest value of each reported metric.
	LastMetrics map[string]float64 `json:"lastMetrics,omitempty"`
	// ShellEnv is the submitting shell's environment the job runs with
	// (spec.ShellEnvVars, from spec.Document.ShellEnv); local engine only.
	ShellEnv map[string]string `json:"shellEnv,omitempty"`
}

// Finished reports whether the job has a Complete or Failed condition.
func (j *Job) Finished() bool { return j.Phase == JobComplete || j.Phase == JobFailed }

// FinalCondition returns the Complete or Failed condition, or nil.
func (j *Job) FinalCondition() *Condition {
	for i := range j.Conditions {
		c := &j.Conditions[i]
		if (c.Type == ConditionComplete || c.Type == ConditionFailed) && c.Status == "True" {
			return c
		}
	}
	return nil
}

// Attempt is one run of a job's command: a pod on Kubernetes.
type Attempt struct {
	Index int    `json:"index"` // 0-based
	Name  string `json:"name"`  // pod name, or JOB-N locally
	// Phase is Pending, Running, Succeeded or Failed (pod phases).
	Phase     PodPhase   `json:"phase"`
	StartTime *time.Time `json:"startTime,omitempty"`
	EndTime   *time.Time `json:"endTime,omitempty"`
	ExitCode  *int32     `json:"exitCode,omitempty"`
	// Reason is Completed, Error, OOMKilled, DeadlineExceeded or StartError
	// once finished; a waiting reason (ImagePullBackOff …) on Kubernetes.
	Reason  string   `json:"reason,omitempty"`
	Message string   `json:"message,omitempty"`
	GPUs    []string `json:"gpus,omitempty"` // device indices or UUIDs
	Node    string   `json:"node,omitempty"`
	// Ignored is true when podFailurePolicy's Ignore action matched, so the
	// failure did not count against backoffLimit.
	Ignored bool `json:"ignored,omitempty"`
	// LogTail is the last lines of a failed attempt's output (at most 20
	// lines, 2 KiB), as the kubelet's terminationMessagePolicy
	// FallbackToLogsOnError keeps them; diagnose reads error signatures there.
	// For a distributed attempt they are the first failed worker's lines.
	LogTail []string `json:"logTail,omitempty"`
	// DisruptionTarget is true when the attempt was stopped by a
	// disruption (`petrel preempt`, an eviction), as the pod condition
	// DisruptionTarget=True that podFailurePolicy onPodConditions match.
	DisruptionTarget bool `json:"disruptionTarget,omitempty"`
	// Workers is each worker of a distributed job's local attempt (a
	// gang of numNodes pods started and stopped together); empty for a
	// job of one worker. The attempt fails with the first worker that
	// fails (FailedWorker), and the others are stopped because of it.
	Workers []Worker `json:"workers,omitempty"`
	// FailedWorker is the index of the worker whose failure failed the
	// attempt (the first to fail), when one did.
	FailedWorker *int `json:"failedWorker,omitempty"`
	// MasterPort is the rendezvous port of worker 0 of a local
	// distributed attempt (MASTER_PORT), chosen free when it starts.
	MasterPort int `json:"masterPort,omitempty"`
}

// Worker is one worker (rank) of a local distributed attempt: a pod of
// the gang with its own process group, GPUs and cgroup.
type Worker struct {
	// Index is the worker's rank among the job's workers (NODE_RANK,
	// JOB_COMPLETION_INDEX), 0-based.
	Index int `json:"index"`
	// Phase is Running until the worker's process ends, then Succeeded
	// or Failed.
	Phase    PodPhase   `json:"phase"`
	ExitCode *int32     `json:"exitCode,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Message  string     `json:"message,omitempty"`
	EndTime  *time.Time `json:"endTime,omitempty"`
	GPUs     []string   `json:"gpus,omitempty"`
}

// MetricPoint is one training metric sample (Katib's stdout format
// "epoch=3 loss=0.41 accuracy=0.93" yields one point per name).
type MetricPoint struct {
	Attempt int       `json:"attempt"`
	Time    time.Time `json:"time"`
	Name    string    `json:"name"`
	Value   float64   `json:"value"`
}

// VolumeStatus is a volume's observed state.
type VolumeStatus struct {
	Name string              `json:"name"`
	Spec v1alpha1.VolumeSpec `json:"spec"`
	// Path is the local directory (local engine) or the PVC name (Kubernetes).
	Path  string `json:"path"`
	Phase string `json:"phase"` // Bound, Pending
	// CreationTime is when the volume was first created.
	CreationTime time.Time `json:"creationTime"`
}

// Service is an inference service's observed state.
type Service struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Labels are the object's metadata.labels (for get -l and --show-labels).
	Labels map[string]string             `json:"labels,omitempty"`
	Spec   v1alpha1.InferenceServiceSpec `json:"spec"`
	// URL is the stable endpoint, e.g. http://127.0.0.1:8080.
	URL             string      `json:"url"`
	DesiredReplicas int32       `json:"desiredReplicas"`
	ReadyReplicas   int32       `json:"readyReplicas"`
	Replicas        []Replica   `json:"replicas,omitempty"`
	Conditions      []Condition `json:"conditions,omitempty"`
	// Metric is the autoscaling metric's current value against its target,
	// e.g. "cpu 142% / 70%"; empty without autoscaling.
	Metric string  `json:"metric,omitempty"`
	Events []Event `json:"events,omitempty"`
	// Generation increases with every changed spec (rolling update).
	Generation   int64     `json:"generation"`
	CreationTime time.Time `json:"creationTime"`
}

// Replica is one server process (a pod on Kubernetes).
type Replica struct {
	Index      int        `json:"index"`
	Name       string     `json:"name"`
	Generation int64      `json:"generation"`
	Phase      string     `json:"phase"` // Pending, Running, Terminating, Failed
	Ready      bool       `json:"ready"`
	Port       int        `json:"port,omitempty"`
	Restarts   int32      `json:"restarts"`
	LastReason string     `json:"lastReason,omitempty"` // e.g. Error, OOMKilled, LivenessProbeFailed
	StartTime  *time.Time `json:"startTime,omitempty"`
	InFlight   int64      `json:"inFlight"`
	Node       string     `json:"node,omitempty"`
	// LogTail is the last lines of the replica's output when it last exited
	// or was killed (at most 20 lines, 2 KiB), as Attempt.LogTail; diagnose
	// reads error signatures there, as it reads a pod's previous logs.
	LogTail []string `json:"logTail,omitempty"`
}

// Event is something that happened to a workload, as core/v1 Event.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`   // Normal, Warning
	Reason  string    `json:"reason"` // e.g. SuccessfulRescale, BackOff
	Message string    `json:"message"`
}

// Severity of a lint or diagnose finding.
type Severity string

// Severities, most severe first.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Finding is one conclusion of lint or diagnose: what is wrong (one
// sentence), the evidence it rests on, and the fix.
type Finding struct {
	// RuleID is a stable identifier, e.g. "PTL001" or "gpu-insufficient".
	RuleID   string   `json:"ruleID"`
	Severity Severity `json:"severity"`
	// Object is "Kind/name" of the object concerned.
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
	// Evidence quotes the status field, event or line the finding rests on.
	Evidence []string `json:"evidence,omitempty"`
	Fix      string   `json:"fix,omitempty"`
	// Permanent is true when waiting will not help (diagnose only).
	Permanent bool `json:"permanent,omitempty"`
	// File, Line and Col locate the finding in its input (lint only).
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// ValidateSpec checks docs together with the volumes that already exist
// on b (spec.Validate), so a workload may mount a volume applied earlier.
// When b cannot list its volumes, only the documents' own are known.
func ValidateSpec(ctx context.Context, b Backend, docs []*spec.Document) error {
	var names []string
	if vs, err := b.ListVolumes(ctx); err == nil {
		for _, v := range vs {
			names = append(names, v.Name)
		}
	}
	return spec.Validate(docs, names...)
}
