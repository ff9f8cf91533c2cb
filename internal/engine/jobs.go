package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	jobctl "github.com/petrel-dev/petrel/internal/engine/controllers/job"
	"github.com/petrel-dev/petrel/internal/engine/node"
	"github.com/petrel-dev/petrel/internal/serving"
)

// jobRecord is a job as the store keeps it: the observed status plus what
// the engine needs to run attempts.
type jobRecord struct {
	backend.Job
	// Dir is the spec file's directory (workingDir and volume sources are
	// resolved against it).
	Dir string `json:"dir"`
	// Labels are the spec's metadata.labels.
	Labels map[string]string `json:"labels,omitempty"`
	// MetricsOffset is, per attempt, the byte offset of its log up to
	// which metrics are stored.
	MetricsOffset map[int]int64 `json:"metricsOffset,omitempty"`
	// Shims is, per attempt, the shim that owns it, recorded before the
	// shim is given the attempt (durable intent), so a restarted server
	// tells an attempt being started, running, ended or lost apart.
	Shims map[int]node.ShimRef `json:"shims,omitempty"`
}

// runningAttempt is an attempt whose shim the engine watches.
type runningAttempt struct {
	job      string
	index    int
	dir      string
	deadline bool // killed by activeDeadlineSeconds
	killing  bool
	// shim is the shim recorded for the attempt (zero for attempts of an
	// older server, which has only pids.json).
	shim    node.ShimRef
	metrics *metricsTail
}

func (e *Engine) jobDir(name string) string { return filepath.Join(e.cfg.Home, "jobs", name) }
func attemptDir(jobDir string, idx int) string {
	return filepath.Join(jobDir, "attempt-"+strconv.Itoa(idx))
}

// applyJob creates a job, or reports it unchanged. A job's spec is
// immutable, as batch/v1 Job's pod template is: a changed spec is refused
// unless replace is set and the job has finished (petrel train re-runs).
// Caller holds e.mu.
func (e *Engine) applyJob(ctx context.Context, j *v1alpha1.TrainingJob, dir string, shellEnv map[string]string, replace bool) (string, error) {
	if err := e.node.Admit("job", j.Metadata.Name, &j.Spec.PodTemplate); err != nil {
		return "", err
	}
	if j.Spec.Distributed() {
		return "", fmt.Errorf("job %q asks for %d workers × %d processes: distributed jobs run on Kubernetes (--target kubernetes) in this version; the local engine runs one worker with one process (leave numNodes and numProcPerNode out)",
			j.Metadata.Name, j.Spec.Workers(), j.Spec.ProcsPerWorker())
	}
	for _, m := range j.Spec.Volumes {
		if _, ok := e.volumes[m.Name]; !ok {
			return "", fmt.Errorf("job %q mounts volume %q, which does not exist: declare it (kind: Volume) in the same file or apply it first", j.Metadata.Name, m.Name)
		}
	}
	if old, ok := e.job(j.Metadata.Name); ok {
		same := reflect.DeepEqual(old.Spec, j.Spec) && old.Dir == dir
		if same && !(replace && old.Finished()) {
			return "unchanged", nil
		}
		if !old.Finished() {
			return "", fmt.Errorf("job %q is running with a different spec; a job's spec cannot change (as batch/v1): wait for it, or `petrel delete job %s` first", j.Metadata.Name, j.Metadata.Name)
		}
		if !replace {
			if reflect.DeepEqual(old.Spec, j.Spec) {
				return "", fmt.Errorf("job %q already ran from %s; this spec comes from %s, and a local job runs in its spec file's folder, so it counts as a different spec (as batch/v1, a job's spec cannot change): `petrel delete job %s` first, or re-run it with `petrel train`", j.Metadata.Name, old.Dir, dir, j.Metadata.Name)
			}
			return "", fmt.Errorf("job %q already ran with a different spec; a job's spec cannot change (as batch/v1): `petrel delete job %s` first, or re-run it with `petrel train`", j.Metadata.Name, j.Metadata.Name)
		}
		if err := e.deleteJobLocked(ctx, j.Metadata.Name); err != nil {
			return "", err
		}
	}
	delete(e.tombstones, j.Metadata.Name)
	r := &jobRecord{Job: backend.Job{Name: j.Metadata.Name, Spec: j.Spec, Phase: backend.JobPending, CreationTime: time.Now(), ShellEnv: shellEnv},
		Dir: dir, Labels: j.Metadata.Labels}
	if j.Spec.Image != "" {
		r.Notes = append(r.Notes, "image is used on Kubernetes only: locally the command runs from the spec file's directory")
	}
	for _, m := range j.Spec.Volumes {
		if m.ReadOnly {
			r.Notes = append(r.Notes, fmt.Sprintf("readOnly of volume %s is enforced on Kubernetes only: locally it is a plain directory", m.Name))
		}
	}
	if j.Spec.SecurityContext != nil {
		r.Notes = append(r.Notes, "securityContext applies on Kubernetes only: locally the job runs as the server's user")
	}
	if e.node.LimitsError() != nil && (j.Spec.Resources.CPU != nil || j.Spec.Resources.Memory != nil) {
		r.Notes = append(r.Notes, "CPU and memory limits are NOT enforced on this host: "+e.node.LimitsError().Error())
	}
	if err := e.store.putJob(ctx, r); err != nil {
		return "", fmt.Errorf("record job %q: %w", r.Name, err)
	}
	e.jobs[r.Name] = r
	e.changed(r.Name)
	e.enqueue(r.Name)
	return "created", nil
}

// reconcileJob is one sync of job name: it reads the job and its pods
// (attempts), asks the Job controller (controllers/job.Sync, the only
// place its rules live) what to do, and does it. The TTL-after-finished
// controller's rule is applied here too, as its own step.
func (e *Engine) reconcileJob(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Clock.Now()
	r, ok := e.jobs[name]
	if !ok {
		// A finished job is not kept in memory: only the TTL-after-finished
		// controller still acts on it.
		if r, ok = e.job(name); ok && r.Finished() {
			e.reconcileTTL(r, now)
		}
		return
	}
	if r.Finished() && e.running[name] == nil {
		delete(e.jobs, name)
		e.reconcileTTL(r, now)
		return
	}
	ra := e.running[name]
	before := statusKey(r)
	pods := make([]jobctl.Pod, len(r.Attempts))
	for i, a := range r.Attempts {
		pods[i] = jobctl.Pod{Name: a.Name, Phase: a.Phase, ExitCode: a.ExitCode, EndTime: a.EndTime,
			Terminating: ra != nil && ra.index == i && ra.killing}
	}
	act := jobctl.Sync(jobctl.Job{Spec: r.Spec, StartTime: r.StartTime, Conditions: r.Conditions}, pods, now,
		jobctl.Backoff{Base: e.cfg.BackoffBase, Max: e.cfg.BackoffMax})

	if act.SetStartTime {
		r.StartTime = &now
	}
	r.Succeeded, r.Failed = 0, 0
	for i := range r.Attempts {
		a := &r.Attempts[i]
		if ign := act.Ignored[a.Name]; ign != a.Ignored {
			a.Ignored = ign
			if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
				e.cfg.Logf("persist attempt: %v", err)
			}
		}
		switch {
		case a.Phase == backend.PodSucceeded:
			r.Succeeded++
		case a.Phase == backend.PodFailed && !a.Ignored:
			r.Failed++
		}
	}
	for _, c := range act.AddConditions {
		r.Conditions = append(r.Conditions, c)
		if c.Type == backend.ConditionComplete || c.Type == backend.ConditionFailed {
			t := c.LastTransitionTime
			r.CompletionTime = &t
		}
	}
	if act.DeleteActive && ra != nil {
		if c := r.Conditions[len(r.Conditions)-1]; c.Type == backend.ConditionFailureTarget && c.Reason == backend.ReasonDeadlineExceeded {
			ra.deadline = true
		}
		e.killAttempt(ra, r.Spec.KillGracePeriod())
	}
	waiting := act.Waiting
	if act.CreatePods > 0 {
		var gpus []int
		if need := int(r.Spec.Resources.GPU); need > 0 {
			if gpus = e.node.GPUs.Allocate(need, name); gpus == nil {
				free := e.node.GPUs.Free()
				waiting = &backend.Waiting{Reason: backend.WaitingForGPUs, GPUsRequested: need, GPUsFree: free,
					Message: fmt.Sprintf("waiting for %d GPUs, %d free", need, free)}
			}
		}
		if waiting == nil {
			e.startAttempt(r, gpus)
		}
	}
	r.Waiting = waiting
	r.Phase, r.Active = jobPhase(r, e.running[name] != nil)
	if statusKey(r) != before {
		e.persist(r) // a sync that changed nothing writes nothing
	}
	if r.Finished() {
		// Done: the record stays in the store, not in memory.
		delete(e.jobs, name)
		e.requeueGPUWaiters()
		e.reconcileTTL(r, now)
	} else if act.RequeueAfter > 0 {
		e.enqueueAfter(name, act.RequeueAfter)
	}
}

// statusKey is what a sync may change in a job's record, to tell whether
// it must be written and watchers woken.
func statusKey(r *jobRecord) string {
	ignored := 0
	for _, a := range r.Attempts {
		if a.Ignored {
			ignored++
		}
	}
	start := ""
	if r.StartTime != nil {
		start = r.StartTime.String()
	}
	return fmt.Sprintf("%s|%d|%d|%d|%s|%d|%d|%d|%s", r.Phase, r.Active, r.Succeeded, r.Failed, r.Waiting.String(),
		len(r.Conditions), len(r.Attempts), ignored, start)
}

// jobPhase summarises a job for get's STATUS column: Complete or Failed
// once that condition is set, Running while an attempt runs (or is
// terminating), else Pending; and the number of active attempts.
func jobPhase(r *jobRecord, running bool) (backend.JobPhase, int32) {
	if c := r.FinalCondition(); c != nil {
		return backend.JobPhase(c.Type), 0
	}
	if running {
		return backend.JobRunning, 1
	}
	return backend.JobPending, 0
}

// reconcileTTL deletes a finished job ttlSecondsAfterFinished after it
// finished, once no attempt is stopping (the TTL-after-finished
// controller). Caller holds e.mu.
func (e *Engine) reconcileTTL(r *jobRecord, now time.Time) {
	ttl := r.Spec.TTLSecondsAfterFinished
	if ttl == nil || r.CompletionTime == nil || e.running[r.Name] != nil {
		return
	}
	at := r.CompletionTime.Add(time.Duration(*ttl) * time.Second)
	if now.Before(at) {
		e.enqueueAfter(r.Name, at.Sub(now))
		return
	}
	if err := e.deleteJobLocked(e.ctx, r.Name); err != nil {
		e.cfg.Logf("ttlSecondsAfterFinished: delete job %s: %v", r.Name, err)
	}
}

func (e *Engine) persist(r *jobRecord) {
	if err := e.store.putJob(e.ctx, r); err != nil {
		e.cfg.Logf("persist job %s: %v", r.Name, err)
	}
	e.changed(r.Name)
}

// startAttempt resolves the command and starts a shim for the next
// attempt. A command that cannot start ends the attempt with StartError
// (exit code 128, as containerd reports it). Caller holds e.mu.
func (e *Engine) startAttempt(r *jobRecord, gpus []int) {
	idx := len(r.Attempts)
	now := time.Now()
	// Durable intent: the attempt (the pod) is in the store, Pending,
	// before any process is started for it, and its shim is recorded
	// before the shim is given it.
	r.Attempts = append(r.Attempts, backend.Attempt{Index: idx, Name: fmt.Sprintf("%s-%d", r.Name, idx), Phase: backend.PodPending, StartTime: &now, Node: "local"})
	a := &r.Attempts[idx]
	for _, g := range gpus {
		a.GPUs = append(a.GPUs, strconv.Itoa(g))
	}
	dir := attemptDir(e.jobDir(r.Name), idx)
	var shim *exec.Cmd
	err := e.store.putAttempt(e.ctx, r.Name, a)
	var cfg *node.ShimConfig
	if err == nil {
		cfg, err = e.node.Prepare(e.podSpec(r, idx, gpus))
	}
	if err == nil {
		shim, err = e.node.Start(dir, cfg, func(ref node.ShimRef) error {
			if r.Shims == nil {
				r.Shims = map[int]node.ShimRef{}
			}
			r.Shims[idx] = ref
			return e.store.putJob(e.ctx, r)
		})
	}
	if err != nil {
		err = errors.New(v1alpha1.MaskSecretValues(err.Error(), r.Spec.Env))
		e.node.GPUs.Release(r.Name)
		code := int32(128)
		a.Phase, a.Reason, a.ExitCode, a.EndTime, a.Message = backend.PodFailed, backend.ReasonStartError, &code, &now, err.Error()
		if dir != "" {
			_ = os.MkdirAll(dir, 0o700)
			_ = os.WriteFile(filepath.Join(dir, LogFile), []byte("petrel: "+err.Error()+"\n"), 0o600)
		}
		e.afterAttempt(r, a)
		return
	}
	a.Phase = backend.PodRunning
	if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
		e.cfg.Logf("persist attempt: %v", err)
	}
	ra := &runningAttempt{job: r.Name, index: idx, dir: dir, shim: r.Shims[idx], metrics: newMetricsTail(filepath.Join(dir, LogFile))}
	e.running[r.Name] = ra
	// Not counted in e.wg: Close must not wait for workloads to end.
	go func() {
		_ = shim.Wait()
		e.attemptExited(ra)
	}()
	e.wg.Add(1)
	go e.tailMetrics(ra)
}

// podSpec is attempt idx of job r as the pod layer starts it: the job's
// template with PETREL_JOB_NAME, PETREL_ATTEMPT and each mount's pathEnv
// (the volume's directory) before the spec's env.
func (e *Engine) podSpec(r *jobRecord, idx int, gpus []int) node.PodSpec {
	vars := [][2]string{{"PETREL_JOB_NAME", r.Name}, {"PETREL_ATTEMPT", strconv.Itoa(idx)}}
	for _, m := range r.Spec.Volumes {
		if m.PathEnv != "" {
			vars = append(vars, [2]string{m.PathEnv, e.volumePath(m.Name)})
		}
	}
	return node.PodSpec{Name: fmt.Sprintf("%s-%d", r.Name, idx), Template: &r.Spec.PodTemplate, BaseDir: r.Dir, ShellEnv: r.ShellEnv, Vars: vars, GPUs: gpus}
}

// attemptExited records an attempt's outcome from its shim's status file.
func (e *Engine) attemptExited(ra *runningAttempt) {
	var st node.ShimStatus
	statusErr := node.ReadJSON(filepath.Join(ra.dir, node.StatusFile), &st)
	ra.metrics.stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx.Err() != nil || e.running[ra.job] != ra {
		return // closed: the next server settles it from status.json
	}
	delete(e.running, ra.job)
	e.node.GPUs.Release(ra.job)
	r, ok := e.jobs[ra.job]
	if !ok || ra.index >= len(r.Attempts) {
		e.changed(ra.job)
		e.requeueGPUWaiters()
		return
	}
	e.storeMetrics(ra)
	a := &r.Attempts[ra.index]
	now := time.Now()
	a.EndTime = &now
	switch {
	case statusErr != nil:
		node.ReapLost(ra.dir) // never leave a workload running unowned
		code := int32(137)
		a.Phase, a.Reason, a.ExitCode = backend.PodFailed, backend.ReasonError, &code
		a.Message = "the attempt's shim ended without recording an exit status"
		if !exists(filepath.Join(ra.dir, node.PidsFile)) {
			a.Message = "the attempt's shim ended before it started the workload"
		}
	case st.StartError != "":
		a.Phase, a.Reason, a.ExitCode, a.Message = backend.PodFailed, backend.ReasonStartError, &st.ExitCode, v1alpha1.MaskSecretValues(st.StartError, r.Spec.Env)
	default:
		a.ExitCode = &st.ExitCode
		a.EndTime = &st.Finished
		a.Phase, a.Reason = backend.PodFailed, st.Reason()
		switch {
		case ra.deadline:
			a.Reason = backend.ReasonDeadlineExceeded
			a.Message = "killed: the job's activeDeadlineSeconds passed"
		case a.Reason == backend.ReasonCompleted:
			a.Phase = backend.PodSucceeded
		case a.Reason == backend.ReasonOOMKilled:
			a.Message = "the kernel OOM-killed the attempt at its memory limit"
			if q := r.Spec.Resources.Memory; q != nil {
				a.Message += " (" + q.String() + ")"
			}
		case st.Signal != "":
			a.Message = "ended by signal " + st.Signal
		}
	}
	if a.Phase == backend.PodFailed {
		a.LogTail = serving.TailLines(filepath.Join(ra.dir, LogFile), 20, 2048)
	}
	e.afterAttempt(r, a)
	e.requeueGPUWaiters()
}

// afterAttempt records a finished attempt and asks for a sync of its
// job, which applies podFailurePolicy, backoffLimit and the back-off.
// Caller holds e.mu.
func (e *Engine) afterAttempt(r *jobRecord, a *backend.Attempt) {
	if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
		e.cfg.Logf("persist attempt: %v", err)
	}
	e.persist(r)
	e.enqueue(r.Name)
}

// requeueGPUWaiters asks for a sync of every job waiting for GPUs, after
// some were released. Caller holds e.mu.
func (e *Engine) requeueGPUWaiters() {
	for name, r := range e.jobs {
		if !r.Finished() && r.Waiting != nil && r.Waiting.Reason == backend.WaitingForGPUs {
			e.enqueue(name)
		}
	}
	e.requeueServiceGPUWaiters()
}

// killAttempt stops an attempt through the pod layer (SIGTERM, grace,
// SIGKILL of its group). Caller holds e.mu.
func (e *Engine) killAttempt(ra *runningAttempt, grace time.Duration) {
	if ra.killing {
		return
	}
	ra.killing = true
	go node.Kill(ra.dir, grace)
}

// deleteJobLocked stops a job's running attempt, removes its records and
// its attempt directories. Caller holds e.mu (released while waiting for
// the attempt to stop).
func (e *Engine) deleteJobLocked(ctx context.Context, name string) error {
	if ra := e.running[name]; ra != nil {
		grace := (&v1alpha1.PodTemplate{}).KillGracePeriod()
		if r, ok := e.jobs[name]; ok {
			grace = r.Spec.KillGracePeriod()
		}
		e.killAttempt(ra, grace)
		for e.running[name] == ra {
			ch := e.changes(name)
			e.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				e.mu.Lock()
				return ctx.Err()
			}
			e.mu.Lock()
		}
	}
	r, ok := e.job(name)
	if !ok {
		return nil
	}
	if err := e.store.deleteJob(ctx, name); err != nil {
		return fmt.Errorf("delete job %q: %w", name, err)
	}
	if r.Finished() {
		if len(e.tombstones) > 1000 {
			e.tombstones = map[string]backend.Job{}
		}
		e.tombstones[name] = e.snapshot(r)
	}
	delete(e.jobs, name)
	e.node.GPUs.Release(name)
	e.changed(name)
	return os.RemoveAll(e.jobDir(name))
}
