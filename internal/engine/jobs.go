package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
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
	// Shims is, per pod (an attempt, or a worker of a distributed
	// attempt: see shimKey), the shim that owns it, recorded before the
	// shim is given the pod (durable intent), so a restarted server tells
	// a pod being started, running, ended or lost apart.
	Shims map[string]node.ShimRef `json:"shims,omitempty"`
}

// shimKey names worker w of attempt idx in jobRecord.Shims: "idx" for a
// job of one worker (as records of earlier versions have it), "idx/w"
// for a worker of a distributed attempt.
func shimKey(idx, w int, workers int) string {
	if workers <= 1 {
		return strconv.Itoa(idx)
	}
	return strconv.Itoa(idx) + "/" + strconv.Itoa(w)
}

// runningAttempt is an attempt whose pods (one, or a gang of workers)
// the engine watches. It is the pod group the Job controller sees as one
// pod: active until every worker's process has ended.
type runningAttempt struct {
	job      string
	index    int
	dir      string // the attempt's directory: its log
	deadline bool   // killed by activeDeadlineSeconds
	// killing is set once the attempt is being stopped: by the Job
	// controller (deadline, a finished job), a delete, a preemption, or
	// because one of its workers failed.
	killing bool
	// workers are the attempt's pods; one for a job of one worker.
	workers []*workerProc
	// firstFailed is the worker whose failure (not caused by petrel
	// stopping the attempt) ended the gang; -1 while none has.
	firstFailed int
	metrics     *metricsTail
}

// workerProc is one pod of a running attempt.
type workerProc struct {
	index int
	dir   string // the pod's shim directory
	// shim is the shim recorded for the pod (zero for pods of an older
	// server, which has only pids.json).
	shim node.ShimRef
	done bool // its process ended and the outcome is recorded
}

// live counts the workers whose process has not ended.
func (ra *runningAttempt) live() int {
	n := 0
	for _, w := range ra.workers {
		if !w.done {
			n++
		}
	}
	return n
}

// newRunningAttempt describes attempt idx of job r with workers pods.
func (e *Engine) newRunningAttempt(r *jobRecord, idx, workers int) *runningAttempt {
	dir := attemptDir(e.jobDir(r.Name), idx)
	ra := &runningAttempt{job: r.Name, index: idx, dir: dir, firstFailed: -1, metrics: newMetricsTail(filepath.Join(dir, LogFile))}
	for w := 0; w < workers; w++ {
		wp := &workerProc{index: w, dir: dir, shim: r.Shims[shimKey(idx, w, workers)]}
		if workers > 1 {
			wp.dir = filepath.Join(dir, "worker-"+strconv.Itoa(w))
		}
		ra.workers = append(ra.workers, wp)
	}
	if workers > 1 {
		ra.metrics.only = workerPrefix(0)
	}
	return ra
}

// workerPrefix is what each line of worker w's output starts with in a
// distributed attempt's log.
func workerPrefix(w int) string { return "[worker " + strconv.Itoa(w) + "] " }

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
	if n, g := int(j.Spec.Workers()), int(j.Spec.Resources.GPU); n > 1 && n*g > e.node.GPUs.Total() {
		return "", fmt.Errorf("job %q asks for %d workers × %d GPUs, and a gang starts all its workers at once, but this machine has %d GPUs: it can never run here; lower spec.numNodes or spec.resources.gpu, or use --target kubernetes",
			j.Metadata.Name, n, g, e.node.GPUs.Total())
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
	e.syncJobLocked(name)
}

// syncJobLocked is reconcileJob's sync with e.mu held.
func (e *Engine) syncJobLocked(name string) {
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
	// Each attempt is one pod to the Job controller, a distributed one
	// included: its workers start, fail and retry together (a gang).
	pods := make([]jobctl.Pod, len(r.Attempts))
	for i, a := range r.Attempts {
		pods[i] = jobctl.Pod{Name: a.Name, Phase: a.Phase, ExitCode: a.ExitCode, EndTime: a.EndTime,
			Terminating: ra != nil && ra.index == i && ra.killing, DisruptionTarget: a.DisruptionTarget}
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
		// A gang gets the GPUs of all its workers at once or waits
		// holding none (never a partial gang sitting on GPUs).
		if need := int(r.Spec.Resources.GPU) * int(r.Spec.Workers()); need > 0 {
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
	r.Phase, r.Active = jobPhase(r, e.running[name])
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
// terminating), else Pending; and the number of active pods (the running
// attempt's live workers).
func jobPhase(r *jobRecord, ra *runningAttempt) (backend.JobPhase, int32) {
	if c := r.FinalCondition(); c != nil {
		return backend.JobPhase(c.Type), 0
	}
	if ra != nil {
		return backend.JobRunning, int32(max(1, ra.live()))
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

// startAttempt starts the next attempt: its pods (one, or numNodes
// workers of a gang), each through the pod layer with its own shim,
// process group, GPUs and cgroup. A command that cannot start ends the
// attempt with StartError (exit code 128, as containerd reports it).
// Caller holds e.mu.
func (e *Engine) startAttempt(r *jobRecord, gpus []int) {
	idx := len(r.Attempts)
	workers := int(r.Spec.Workers())
	now := time.Now()
	// Durable intent: the attempt (the pod group) is in the store,
	// Pending, before any process is started for it, and each pod's shim
	// is recorded before the shim is given it.
	r.Attempts = append(r.Attempts, backend.Attempt{Index: idx, Name: fmt.Sprintf("%s-%d", r.Name, idx), Phase: backend.PodPending, StartTime: &now, Node: "local"})
	a := &r.Attempts[idx]
	for _, g := range gpus {
		a.GPUs = append(a.GPUs, strconv.Itoa(g))
	}
	var err error
	if workers > 1 {
		per := int(r.Spec.Resources.GPU)
		for w := 0; w < workers; w++ {
			wk := backend.Worker{Index: w, Phase: backend.PodPending}
			if per > 0 {
				wk.GPUs = a.GPUs[w*per : (w+1)*per]
			}
			a.Workers = append(a.Workers, wk)
		}
		a.MasterPort, err = freePort()
	}
	if err == nil {
		err = e.store.putAttempt(e.ctx, r.Name, a)
	}
	ra := e.newRunningAttempt(r, idx, workers)
	started := 0
	for w := 0; err == nil && w < workers; w++ {
		if err = e.startWorker(r, a, ra, w); err == nil {
			started++
		}
	}
	if err != nil && started == 0 {
		err = errors.New(v1alpha1.MaskSecretValues(err.Error(), r.Spec.Env))
		e.node.GPUs.Release(r.Name)
		code := int32(128)
		a.Phase, a.Reason, a.ExitCode, a.EndTime, a.Message = backend.PodFailed, backend.ReasonStartError, &code, &now, err.Error()
		for w := range a.Workers {
			a.Workers[w].Phase = backend.PodFailed
		}
		_ = os.MkdirAll(ra.dir, 0o700)
		_ = os.WriteFile(filepath.Join(ra.dir, LogFile), []byte("petrel: "+err.Error()+"\n"), 0o600)
		e.afterAttempt(r, a)
		return
	}
	a.Phase = backend.PodRunning
	if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
		e.cfg.Logf("persist attempt: %v", err)
	}
	e.running[r.Name] = ra
	if err != nil {
		// Part of the gang started: the rest cannot, so the attempt
		// fails as a worker that cannot start fails it.
		w := started
		ra.workers[w].done = true
		code := int32(128)
		msg := v1alpha1.MaskSecretValues(err.Error(), r.Spec.Env)
		a.Workers[w] = backend.Worker{Index: w, Phase: backend.PodFailed, ExitCode: &code, Reason: backend.ReasonStartError, Message: msg, EndTime: &now, GPUs: a.Workers[w].GPUs}
		for i := w + 1; i < workers; i++ {
			ra.workers[i].done = true
			a.Workers[i].Phase = backend.PodFailed
		}
		ra.firstFailed = w
		e.stopGang(r, ra)
	}
	e.wg.Add(1)
	go e.tailMetrics(ra)
}

// startWorker hands worker w of attempt a to a shim (the attempt itself
// for a job of one worker) and watches it. Caller holds e.mu.
func (e *Engine) startWorker(r *jobRecord, a *backend.Attempt, ra *runningAttempt, w int) error {
	wp := ra.workers[w]
	var gpus []int
	src := a.GPUs
	if len(a.Workers) > 0 {
		src = a.Workers[w].GPUs
	}
	for _, g := range src {
		if n, err := strconv.Atoi(g); err == nil {
			gpus = append(gpus, n)
		}
	}
	cfg, err := e.node.Prepare(e.podSpec(r, a, w, gpus))
	if err != nil {
		return err
	}
	if len(ra.workers) > 1 {
		cfg.LogPath = filepath.Join(ra.dir, LogFile)
		cfg.LinePrefix = workerPrefix(w)
		if err := os.MkdirAll(ra.dir, 0o700); err != nil {
			return err
		}
	}
	key := shimKey(a.Index, w, len(ra.workers))
	shim, err := e.node.Start(wp.dir, cfg, func(ref node.ShimRef) error {
		if r.Shims == nil {
			r.Shims = map[string]node.ShimRef{}
		}
		r.Shims[key] = ref
		wp.shim = ref
		return e.store.putJob(e.ctx, r)
	})
	if err != nil {
		return err
	}
	if len(a.Workers) > 0 {
		a.Workers[w].Phase = backend.PodRunning
	}
	// Not counted in e.wg: Close must not wait for workloads to end.
	go func() {
		_ = shim.Wait()
		e.workerExited(ra, w)
	}()
	return nil
}

// freePort returns a TCP port free on the loopback now: worker 0's
// rendezvous port (MASTER_PORT) of a local distributed attempt.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free rendezvous port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// podSpec is worker w of attempt a of job r as the pod layer starts it:
// the job's template with PETREL_JOB_NAME, PETREL_ATTEMPT, for a
// distributed job the rendezvous environment (distributedEnv), and each
// mount's pathEnv (the volume's directory) before the spec's env.
func (e *Engine) podSpec(r *jobRecord, a *backend.Attempt, w int, gpus []int) node.PodSpec {
	vars := [][2]string{{"PETREL_JOB_NAME", r.Name}, {"PETREL_ATTEMPT", strconv.Itoa(a.Index)}}
	name := fmt.Sprintf("%s-%d", r.Name, a.Index)
	if r.Spec.Workers() > 1 || r.Spec.ProcsPerWorker() > 1 {
		vars = append(vars, distributedEnv(&r.Spec, w, a.MasterPort)...)
		if r.Spec.Workers() > 1 {
			name = fmt.Sprintf("%s-%d-%d", r.Name, a.Index, w)
		}
	}
	for _, m := range r.Spec.Volumes {
		if m.PathEnv != "" {
			vars = append(vars, [2]string{m.PathEnv, e.volumePath(m.Name)})
		}
	}
	return node.PodSpec{Name: name, Template: &r.Spec.PodTemplate, BaseDir: r.Dir, ShellEnv: r.ShellEnv, Vars: vars, GPUs: gpus}
}

// distributedEnv is worker w's rendezvous environment
// (v1alpha1.RendezvousEnv, the same as on Kubernetes) plus
// JOB_COMPLETION_INDEX, as the Job controller sets it for an Indexed Job.
// Locally worker 0 is 127.0.0.1 at a port free when the attempt started.
func distributedEnv(s *v1alpha1.TrainingJobSpec, w, port int) [][2]string {
	rank := strconv.Itoa(w)
	var vars [][2]string
	for _, v := range s.RendezvousEnv("127.0.0.1", port) {
		if v.WorkerIndex {
			v.Value = rank
		}
		vars = append(vars, [2]string{v.Name, v.Value})
	}
	return append(vars, [2]string{"JOB_COMPLETION_INDEX", rank})
}

// workerExited records how worker w of an attempt ended, from its shim's
// status file. The first worker to fail (unless petrel was stopping the
// attempt) fails the gang: the others are stopped at once, not left in a
// collective until a timeout. Once every worker has ended the attempt is
// recorded as one pod: Succeeded when all succeeded, else Failed with the
// first failed worker's exit code and reason.
func (e *Engine) workerExited(ra *runningAttempt, w int) {
	wp := ra.workers[w]
	var st node.ShimStatus
	statusErr := node.ReadJSON(filepath.Join(wp.dir, node.StatusFile), &st)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx.Err() != nil || e.running[ra.job] != ra || wp.done {
		return // closed: the next server settles it from status.json
	}
	wp.done = true
	r, ok := e.jobs[ra.job]
	if !ok || ra.index >= len(r.Attempts) {
		if ra.live() == 0 {
			ra.metrics.stop()
			delete(e.running, ra.job)
			e.node.GPUs.Release(ra.job)
			e.changed(ra.job)
			e.requeueGPUWaiters()
		}
		return
	}
	a := &r.Attempts[ra.index]
	out := e.workerOutcome(r, ra, wp, statusErr, &st)
	if len(a.Workers) > w {
		out.GPUs = a.Workers[w].GPUs
		a.Workers[w] = out
		if out.Phase == backend.PodFailed && ra.firstFailed < 0 && !ra.killing {
			ra.firstFailed = w
			e.stopGang(r, ra)
		}
	}
	if ra.live() > 0 {
		if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
			e.cfg.Logf("persist attempt: %v", err)
		}
		e.changed(r.Name)
		return
	}
	ra.metrics.stop()
	delete(e.running, ra.job)
	e.node.GPUs.Release(ra.job)
	e.storeMetrics(ra)
	if len(a.Workers) == 0 {
		a.Phase, a.Reason, a.ExitCode, a.Message, a.EndTime = out.Phase, out.Reason, out.ExitCode, out.Message, out.EndTime
		if a.Phase == backend.PodFailed {
			a.LogTail = serving.TailLines(filepath.Join(ra.dir, LogFile), 20, 2048)
		}
	} else {
		gangOutcome(a, ra)
	}
	if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
		e.cfg.Logf("persist attempt: %v", err)
	}
	// The Job controller decides on the ended attempt in this critical
	// section, so no reader sees it failed without that decision (Ignored
	// by podFailurePolicy or counted against backoffLimit).
	e.syncJobLocked(r.Name)
	e.requeueGPUWaiters()
}

// stopGang stops the workers of a distributed attempt still running after
// one failed (fail-fast), with the job's grace period. Caller holds e.mu.
func (e *Engine) stopGang(r *jobRecord, ra *runningAttempt) {
	ra.killing = true
	grace := r.Spec.KillGracePeriod()
	for _, wp := range ra.workers {
		if !wp.done {
			go node.Kill(wp.dir, grace)
		}
	}
}

// gangOutcome sums up a distributed attempt whose workers have all ended:
// Succeeded when every worker did; else Failed with the first failed
// worker's exit code, reason and last lines, and a message naming it and
// the workers stopped because of it. An attempt petrel stopped (deadline,
// preemption, delete) fails with worker 0's outcome.
func gangOutcome(a *backend.Attempt, ra *runningAttempt) {
	a.Phase, a.Reason = backend.PodSucceeded, backend.ReasonCompleted
	var end *time.Time
	for _, wk := range a.Workers {
		if wk.EndTime != nil && (end == nil || wk.EndTime.After(*end)) {
			end = wk.EndTime
		}
		if wk.Phase != backend.PodSucceeded {
			a.Phase = backend.PodFailed
		}
	}
	a.EndTime = end
	if a.Phase == backend.PodSucceeded {
		zero := int32(0)
		a.ExitCode = &zero
		return
	}
	first := ra.firstFailed
	if first < 0 {
		first = 0
	}
	wk := a.Workers[first]
	a.ExitCode, a.Reason = wk.ExitCode, wk.Reason
	if a.Reason == "" || a.Reason == backend.ReasonCompleted {
		a.Reason = backend.ReasonError
	}
	a.LogTail = workerTail(filepath.Join(ra.dir, LogFile), first)
	if ra.firstFailed < 0 {
		a.Message = wk.Message
		return
	}
	a.FailedWorker = &first
	var stopped []string
	for _, o := range a.Workers {
		if o.Index != first && o.Reason != backend.ReasonCompleted {
			stopped = append(stopped, strconv.Itoa(o.Index))
		}
	}
	code := int32(-1)
	if wk.ExitCode != nil {
		code = *wk.ExitCode
	}
	at := ""
	if wk.EndTime != nil {
		at = " at " + wk.EndTime.Format("15:04:05.000")
	}
	a.Message = fmt.Sprintf("worker %d failed first%s with exit code %d (%s)", first, at, code, wk.Reason)
	if wk.Message != "" {
		a.Message += ": " + wk.Message
	}
	if len(stopped) > 0 {
		a.Message += fmt.Sprintf("; worker %s stopped because of it", strings.Join(stopped, ", "))
	}
}

// workerTail is the last lines (at most 20, 2 KiB) worker w wrote to a
// distributed attempt's shared log, without their prefix.
func workerTail(path string, w int) []string {
	prefix := workerPrefix(w)
	var out []string
	size := 0
	lines := serving.TailLines(path, 2000, 256<<10)
	for i := len(lines) - 1; i >= 0 && len(out) < 20; i-- {
		l, ok := strings.CutPrefix(lines[i], prefix)
		if !ok {
			continue
		}
		if size += len(l); size > 2048 {
			break
		}
		out = append(out, l)
	}
	slices.Reverse(out)
	return out
}

// workerOutcome reads how one pod ended. Caller holds e.mu.
func (e *Engine) workerOutcome(r *jobRecord, ra *runningAttempt, wp *workerProc, statusErr error, st *node.ShimStatus) backend.Worker {
	now := time.Now()
	out := backend.Worker{Index: wp.index, EndTime: &now}
	switch {
	case statusErr != nil:
		node.ReapLost(wp.dir) // never leave a workload running unowned
		code := int32(137)
		out.Phase, out.Reason, out.ExitCode = backend.PodFailed, backend.ReasonError, &code
		out.Message = "the shim ended without recording an exit status"
		if !exists(filepath.Join(wp.dir, node.PidsFile)) {
			out.Message = "the shim ended before it started the workload"
		}
	case st.StartError != "":
		code := st.ExitCode
		out.Phase, out.Reason, out.ExitCode, out.Message = backend.PodFailed, backend.ReasonStartError, &code, v1alpha1.MaskSecretValues(st.StartError, r.Spec.Env)
	default:
		code, end := st.ExitCode, st.Finished
		out.ExitCode, out.EndTime = &code, &end
		out.Phase, out.Reason = backend.PodFailed, st.Reason()
		a := &r.Attempts[ra.index]
		switch {
		case ra.deadline:
			out.Reason = backend.ReasonDeadlineExceeded
			out.Message = "killed: the job's activeDeadlineSeconds passed"
		case out.Reason == backend.ReasonCompleted:
			out.Phase = backend.PodSucceeded
		case a.DisruptionTarget:
			out.Message = "preempted: stopped as a disruption (DisruptionTarget)"
		case out.Reason == backend.ReasonOOMKilled:
			out.Message = "the kernel OOM-killed it at its memory limit"
			if q := r.Spec.Resources.Memory; q != nil {
				out.Message += " (" + q.String() + ")"
			}
		case st.Signal != "":
			out.Message = "ended by signal " + st.Signal
		}
	}
	return out
}

// afterAttempt records an attempt that could not start and asks for
// another sync of its job, which applies podFailurePolicy, backoffLimit
// and the back-off; the sync that started it persists the job and wakes
// watchers. Caller holds e.mu, inside a sync.
func (e *Engine) afterAttempt(r *jobRecord, a *backend.Attempt) {
	if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
		e.cfg.Logf("persist attempt: %v", err)
	}
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

// killAttempt stops an attempt's pods through the pod layer (SIGTERM,
// grace, SIGKILL of each group). Caller holds e.mu.
func (e *Engine) killAttempt(ra *runningAttempt, grace time.Duration) {
	if ra.killing {
		return
	}
	ra.killing = true
	for _, wp := range ra.workers {
		if !wp.done {
			go node.Kill(wp.dir, grace)
		}
	}
}

// preemptJob stops a job's running attempt as a disruption, as an
// eviction or preemption does on a cluster: the DisruptionTarget
// condition is recorded on the attempt first (durable, so a restarted
// server still knows), then its pods get SIGTERM, the grace period and
// SIGKILL. The Job controller then applies podFailurePolicy: a rule
// `onPodConditions: [{type: DisruptionTarget}]` with action Ignore keeps
// the preemption out of backoffLimit, and the job starts its next
// attempt (which resumes from its checkpoint, if it writes one).
func (e *Engine) preemptJob(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.jobs[name]
	ra := e.running[name]
	if !ok {
		if _, found := e.job(name); found {
			return fmt.Errorf("job %s has finished: nothing to preempt", name)
		}
		return fmt.Errorf("job %q: %w", name, backend.ErrNotFound)
	}
	if ra == nil || ra.index >= len(r.Attempts) {
		return fmt.Errorf("job %s has no running attempt to preempt (%s)", name, r.Phase)
	}
	if ra.killing {
		return fmt.Errorf("job %s's attempt %d is already stopping", name, ra.index)
	}
	a := &r.Attempts[ra.index]
	a.DisruptionTarget = true
	if err := e.store.putAttempt(ctx, name, a); err != nil {
		return fmt.Errorf("record the preemption of job %s: %w", name, err)
	}
	e.killAttempt(ra, r.Spec.KillGracePeriod())
	e.changed(name)
	return nil
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
