package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/expansion"
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
}

// runningAttempt is an attempt whose shim the engine watches.
type runningAttempt struct {
	job      string
	index    int
	dir      string
	deadline bool // killed by activeDeadlineSeconds
	killing  bool
	metrics  *metricsTail
}

func (e *Engine) jobDir(name string) string { return filepath.Join(e.cfg.Home, "jobs", name) }
func attemptDir(jobDir string, idx int) string {
	return filepath.Join(jobDir, "attempt-"+strconv.Itoa(idx))
}

// applyJob creates a job, or reports it unchanged. A job's spec is
// immutable, as batch/v1 Job's pod template is: a changed spec is refused
// unless replace is set and the job has finished (petrel train re-runs).
// Caller holds e.mu.
func (e *Engine) applyJob(ctx context.Context, j *v1alpha1.TrainingJob, dir string, replace bool) (string, error) {
	if n := int(j.Spec.Resources.GPU); n > e.gpus.total() {
		return "", fmt.Errorf("job %q asks for %d GPUs (%s) but this machine has %d: it can never run here; lower spec.resources.gpu or use --target kubernetes",
			j.Metadata.Name, n, j.Spec.Resources.GPUName(), e.gpus.total())
	}
	for _, m := range j.Spec.Volumes {
		if _, ok := e.volumes[m.Name]; !ok {
			return "", fmt.Errorf("job %q mounts volume %q, which does not exist: declare it (kind: Volume) in the same file or apply it first", j.Metadata.Name, m.Name)
		}
	}
	if old, ok := e.jobs[j.Metadata.Name]; ok {
		same := reflect.DeepEqual(old.Spec, j.Spec) && old.Dir == dir
		if same && !(replace && old.Finished()) {
			return "unchanged", nil
		}
		if !old.Finished() {
			return "", fmt.Errorf("job %q is running with a different spec; a job's spec cannot change (as batch/v1): wait for it, or `petrel delete job %s` first", j.Metadata.Name, j.Metadata.Name)
		}
		if !replace {
			return "", fmt.Errorf("job %q already ran with a different spec; a job's spec cannot change (as batch/v1): `petrel delete job %s` first, or re-run it with `petrel train`", j.Metadata.Name, j.Metadata.Name)
		}
		if err := e.deleteJobLocked(ctx, j.Metadata.Name); err != nil {
			return "", err
		}
	}
	delete(e.tombstones, j.Metadata.Name)
	r := &jobRecord{Job: backend.Job{Name: j.Metadata.Name, Spec: j.Spec, Phase: backend.JobPending, CreationTime: time.Now()}, Dir: dir, Labels: j.Metadata.Labels}
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
	if e.limitsErr != nil && (j.Spec.Resources.CPU != nil || j.Spec.Resources.Memory != nil) {
		r.Notes = append(r.Notes, "CPU and memory limits are NOT enforced on this host: "+e.limitsErr.Error())
	}
	if err := e.store.putJob(ctx, r); err != nil {
		return "", fmt.Errorf("record job %q: %w", r.Name, err)
	}
	e.jobs[r.Name] = r
	e.changed(r.Name)
	go e.enqueue(r.Name)
	return "created", nil
}

// reconcileJob moves one job towards its desired state, as the batch/v1
// Job controller does: finish it, enforce its deadline, wait out back-off,
// wait for GPUs, or start the next attempt.
func (e *Engine) reconcileJob(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.jobs[name]
	if !ok {
		return
	}
	now := time.Now()
	if r.Finished() {
		if ttl := r.Spec.TTLSecondsAfterFinished; ttl != nil && r.CompletionTime != nil && e.running[name] == nil {
			at := r.CompletionTime.Add(time.Duration(*ttl) * time.Second)
			if !now.Before(at) {
				if err := e.deleteJobLocked(e.ctx, name); err != nil {
					e.cfg.Logf("ttlSecondsAfterFinished: delete job %s: %v", name, err)
				}
				return
			}
			e.enqueueAfter(name, at.Sub(now))
		}
		return
	}
	if d := r.Spec.ActiveDeadlineSeconds; d != nil && r.StartTime != nil {
		at := r.StartTime.Add(time.Duration(*d) * time.Second)
		if !now.Before(at) {
			msg := fmt.Sprintf("Job was active longer than specified deadline (%ds)", *d)
			if ra := e.running[name]; ra != nil {
				ra.deadline = true
				e.killAttempt(ra, r.Spec.EffectiveGracePeriod())
			}
			e.finish(r, backend.JobFailed, backend.ReasonDeadlineExceeded, msg)
			return
		}
		e.enqueueAfter(name, at.Sub(now))
	}
	if e.running[name] != nil {
		return
	}
	counted := 0
	var last *backend.Attempt
	for i := range r.Attempts {
		a := &r.Attempts[i]
		last = a
		if a.Phase == "Failed" && !a.Ignored {
			counted++
		}
	}
	if last != nil {
		if last.Phase == "Succeeded" {
			e.finish(r, backend.JobComplete, backend.ReasonCompletionsReached, "Reached expected number of succeeded pods")
			return
		}
		if limit := int(r.Spec.EffectiveBackoffLimit()); counted > limit {
			e.finish(r, backend.JobFailed, backend.ReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
			return
		}
		if counted > 0 && last.EndTime != nil && !last.Ignored {
			at := last.EndTime.Add(e.backoff(counted))
			if now.Before(at) {
				e.setWaiting(r, fmt.Sprintf("back-off %s before attempt %d (%d failed)", at.Sub(now).Round(time.Second), len(r.Attempts), counted))
				e.enqueueAfter(name, at.Sub(now))
				return
			}
		}
	}
	need := int(r.Spec.Resources.GPU)
	var gpus []int
	if need > 0 {
		gpus = e.gpus.allocate(need, name)
		if gpus == nil {
			e.setWaiting(r, fmt.Sprintf("waiting for %d GPUs, %d free", need, e.gpus.free()))
			return
		}
	}
	e.startAttempt(r, gpus)
}

// backoff is the delay before the next attempt after n counted failures:
// base × 2^(n-1), capped (the Job controller's pod failure back-off).
func (e *Engine) backoff(n int) time.Duration {
	d := e.cfg.BackoffBase
	for i := 1; i < n; i++ {
		d *= 2
		if d >= e.cfg.BackoffMax {
			return e.cfg.BackoffMax
		}
	}
	return min(d, e.cfg.BackoffMax)
}

func (e *Engine) setWaiting(r *jobRecord, msg string) {
	if r.Waiting == msg {
		return
	}
	r.Waiting = msg
	e.persist(r)
}

func (e *Engine) persist(r *jobRecord) {
	if err := e.store.putJob(e.ctx, r); err != nil {
		e.cfg.Logf("persist job %s: %v", r.Name, err)
	}
	e.changed(r.Name)
}

// finish sets the job's final condition (Complete or Failed, with reason).
func (e *Engine) finish(r *jobRecord, phase, reason, msg string) {
	now := time.Now()
	r.Phase = phase
	r.Waiting = ""
	r.CompletionTime = &now
	r.Conditions = append(r.Conditions, backend.Condition{Type: phase, Status: "True", Reason: reason, Message: msg, LastTransitionTime: now})
	e.persist(r)
	if r.Spec.TTLSecondsAfterFinished != nil {
		e.enqueueAfter(r.Name, time.Duration(*r.Spec.TTLSecondsAfterFinished)*time.Second)
	}
}

// startAttempt resolves the command and starts a shim for the next
// attempt. A command that cannot start ends the attempt with StartError
// (exit code 128, as containerd reports it). Caller holds e.mu.
func (e *Engine) startAttempt(r *jobRecord, gpus []int) {
	idx := len(r.Attempts)
	now := time.Now()
	if r.StartTime == nil {
		r.StartTime = &now
	}
	a := backend.Attempt{Index: idx, Name: fmt.Sprintf("%s-%d", r.Name, idx), Phase: "Running", StartTime: &now, Node: "local"}
	for _, g := range gpus {
		a.GPUs = append(a.GPUs, strconv.Itoa(g))
	}
	dir := attemptDir(e.jobDir(r.Name), idx)
	cfg, err := e.shimConfig(r, gpus)
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err == nil {
		err = writeJSONAtomic(filepath.Join(dir, shimConfigFile), cfg)
	}
	var shim *exec.Cmd
	if err == nil {
		shim, err = e.launchShim(dir)
	}
	r.Waiting = ""
	r.Active = 1
	r.Phase = backend.JobRunning
	if err != nil {
		err = errors.New(v1alpha1.MaskSecretValues(err.Error(), r.Spec.Env))
		e.gpus.release(r.Name)
		code := int32(128)
		a.Phase, a.Reason, a.ExitCode, a.EndTime, a.Message = "Failed", backend.ReasonStartError, &code, &now, err.Error()
		if dir != "" {
			_ = os.MkdirAll(dir, 0o700)
			_ = os.WriteFile(filepath.Join(dir, LogFile), []byte("petrel: "+err.Error()+"\n"), 0o600)
		}
		r.Attempts = append(r.Attempts, a)
		e.afterAttempt(r, &r.Attempts[idx])
		return
	}
	r.Attempts = append(r.Attempts, a)
	if err := e.store.putAttempt(e.ctx, r.Name, &a); err != nil {
		e.cfg.Logf("persist attempt: %v", err)
	}
	e.persist(r)
	ra := &runningAttempt{job: r.Name, index: idx, dir: dir, metrics: newMetricsTail(filepath.Join(dir, LogFile))}
	e.running[r.Name] = ra
	// Not counted in e.wg: Close must not wait for workloads to end.
	go func() {
		_ = shim.Wait()
		e.attemptExited(ra)
	}()
	e.wg.Add(1)
	go e.tailMetrics(ra)
	if d := r.Spec.ActiveDeadlineSeconds; d != nil {
		e.enqueueAfter(r.Name, time.Until(r.StartTime.Add(time.Duration(*d)*time.Second)))
	}
}

// shimConfig resolves argv, environment and working directory of an
// attempt: $(VAR) expansion over the container environment (kubelet
// semantics), each mount's pathEnv set to the volume's local directory,
// GPUs published through CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES.
func (e *Engine) shimConfig(r *jobRecord, gpus []int) (*ShimConfig, error) {
	base := hostEnv()
	var vars [][2]string
	vars = append(vars, [2]string{"PETREL_JOB_NAME", r.Name}, [2]string{"PETREL_ATTEMPT", strconv.Itoa(len(r.Attempts))})
	if e.gpus.total() > 0 || len(gpus) > 0 {
		// Like a pod without a GPU limit, an attempt that asked for none sees none.
		dev, nv := visibleDevices(gpus), visibleDevices(gpus)
		if len(gpus) == 0 {
			nv = "void"
		}
		vars = append(vars, [2]string{"CUDA_VISIBLE_DEVICES", dev}, [2]string{"NVIDIA_VISIBLE_DEVICES", nv})
	}
	for _, m := range r.Spec.Volumes {
		if m.PathEnv != "" {
			vars = append(vars, [2]string{m.PathEnv, e.volumePath(m.Name)})
		}
	}
	for _, ev := range r.Spec.Env {
		vars = append(vars, [2]string{ev.Name, ev.Value})
	}
	envList, env := expandEnv(base, vars)
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	var argv []string
	for _, s := range append(append([]string(nil), r.Spec.Command...), r.Spec.Args...) {
		argv = append(argv, expansion.Expand(s, lookup))
	}
	wd := r.Dir
	if r.Spec.WorkingDir != "" {
		wd = expansion.Expand(r.Spec.WorkingDir, lookup)
		if !filepath.IsAbs(wd) {
			wd = filepath.Join(r.Dir, wd)
		}
	}
	if st, err := os.Stat(wd); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("workingDir %q is not a directory", wd)
	}
	path, err := lookPath(argv[0], wd, env["PATH"])
	if err != nil {
		return nil, err
	}
	argv[0] = path
	final := make([]string, 0, len(base)+len(envList))
	for k, v := range base {
		if _, over := env[k]; over && v != env[k] {
			continue
		}
		final = append(final, k+"="+v)
	}
	for _, kv := range envList {
		final = append(final, kv[0]+"="+kv[1])
	}
	cfg := &ShimConfig{Argv: argv, Env: final, Dir: wd, Display: v1alpha1.MaskSecretValues(argv[0], r.Spec.Env)}
	if e.limitsErr == nil {
		// Every attempt gets a cgroup, limits or not, so all of its
		// processes can be found and killed when it ends.
		if q := r.Spec.Resources.Memory; q != nil {
			cfg.Limits.MemoryBytes = q.Value()
		}
		if q := r.Spec.Resources.CPU; q != nil {
			cfg.Limits.CPUMillicores = q.MilliValue()
		}
		cfg.Cgroup = e.cgroupFor(fmt.Sprintf("%s-%d", r.Name, len(r.Attempts)))
	}
	return cfg, nil
}

// lookPath resolves a command as a container runtime does: a name with a
// slash is a path (relative to the working directory), otherwise it is
// searched in PATH. The error is the StartError message.
func lookPath(name, wd, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(wd, p)
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("exec: %q: no such file or directory", name)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("exec: %q: permission denied (not an executable file)", name)
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// attemptExited records an attempt's outcome from its shim's status file.
func (e *Engine) attemptExited(ra *runningAttempt) {
	var st ShimStatus
	statusErr := readJSON(filepath.Join(ra.dir, shimStatusFile), &st)
	ra.metrics.stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx.Err() != nil || e.running[ra.job] != ra {
		return // closed: the next server settles it from status.json
	}
	delete(e.running, ra.job)
	e.gpus.release(ra.job)
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
		reapLostAttempt(ra.dir) // never leave a workload running unowned
		code := int32(137)
		a.Phase, a.Reason, a.ExitCode = "Failed", backend.ReasonError, &code
		a.Message = "the attempt's shim ended without recording an exit status"
	case st.StartError != "":
		a.Phase, a.Reason, a.ExitCode, a.Message = "Failed", backend.ReasonStartError, &st.ExitCode, v1alpha1.MaskSecretValues(st.StartError, r.Spec.Env)
	default:
		a.ExitCode = &st.ExitCode
		a.EndTime = &st.Finished
		a.Phase, a.Reason = "Failed", st.Reason()
		switch {
		case ra.deadline:
			a.Reason = backend.ReasonDeadlineExceeded
			a.Message = "killed: the job's activeDeadlineSeconds passed"
		case a.Reason == backend.ReasonCompleted:
			a.Phase = "Succeeded"
		case a.Reason == backend.ReasonOOMKilled:
			a.Message = "the kernel OOM-killed the attempt at its memory limit"
			if q := r.Spec.Resources.Memory; q != nil {
				a.Message += " (" + q.String() + ")"
			}
		case st.Signal != "":
			a.Message = "ended by signal " + st.Signal
		}
	}
	if a.Phase == "Failed" {
		a.LogTail = tailLines(filepath.Join(ra.dir, LogFile), 20, 2048)
	}
	e.afterAttempt(r, a)
	e.requeueGPUWaiters()
}

// tailLines returns the last n lines of the file at path, reading at most
// max bytes from its end.
func tailLines(path string, n int, max int64) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // the first may be cut
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines
}

// afterAttempt applies podFailurePolicy to a finished attempt, updates the
// counters and persists. Caller holds e.mu.
func (e *Engine) afterAttempt(r *jobRecord, a *backend.Attempt) {
	r.Active = 0
	if a.Phase == "Succeeded" {
		r.Succeeded++
	} else {
		failJob := ""
		if p := r.Spec.PodFailurePolicy; p != nil && a.ExitCode != nil && a.Reason != backend.ReasonDeadlineExceeded {
			for i, rule := range p.Rules {
				if rule.OnExitCodes == nil || !rule.OnExitCodes.Matches(*a.ExitCode) {
					continue
				}
				switch rule.Action {
				case v1alpha1.PodFailurePolicyActionIgnore:
					a.Ignored = true
				case v1alpha1.PodFailurePolicyActionFailJob:
					failJob = fmt.Sprintf("Container main for pod %s failed with exit code %d matching FailJob rule at index %d", a.Name, *a.ExitCode, i)
				}
				break
			}
		}
		if !a.Ignored {
			r.Failed++
		}
		if failJob != "" && !r.Finished() {
			if r.Phase == backend.JobRunning {
				r.Phase = backend.JobPending
			}
			if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
				e.cfg.Logf("persist attempt: %v", err)
			}
			e.finish(r, backend.JobFailed, backend.ReasonPodFailurePolicy, failJob)
			return
		}
	}
	if r.Phase == backend.JobRunning {
		r.Phase = backend.JobPending
	}
	if err := e.store.putAttempt(e.ctx, r.Name, a); err != nil {
		e.cfg.Logf("persist attempt: %v", err)
	}
	e.persist(r)
	go e.enqueue(r.Name)
}

func (e *Engine) requeueGPUWaiters() {
	for name, r := range e.jobs {
		if !r.Finished() && strings.HasPrefix(r.Waiting, "waiting for") {
			go e.enqueue(name)
		}
	}
}

// killAttempt stops an attempt's process group: SIGTERM, then SIGKILL after
// grace seconds (the kubelet's termination sequence). Caller holds e.mu.
func (e *Engine) killAttempt(ra *runningAttempt, grace int64) {
	if ra.killing {
		return
	}
	ra.killing = true
	go func() {
		var p ShimPids
		for i := 0; i < 50; i++ { // the shim writes pids.json right after starting the workload
			if err := readJSON(filepath.Join(ra.dir, shimPidsFile), &p); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if p.Pid == 0 || !alive(p.Pid, p.StartTicks) {
			return
		}
		_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
		deadline := time.Now().Add(time.Duration(grace) * time.Second)
		for time.Now().Before(deadline) {
			if !alive(p.Pid, p.StartTicks) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Kill whatever is left of the group, the leader included.
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	}()
}

// deleteJobLocked stops a job's running attempt, removes its records and
// its attempt directories. Caller holds e.mu (released while waiting for
// the attempt to stop).
func (e *Engine) deleteJobLocked(ctx context.Context, name string) error {
	if ra := e.running[name]; ra != nil {
		e.killAttempt(ra, e.jobs[name].Spec.EffectiveGracePeriod())
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
	if _, ok := e.jobs[name]; !ok {
		return nil
	}
	if err := e.store.deleteJob(ctx, name); err != nil {
		return fmt.Errorf("delete job %q: %w", name, err)
	}
	if r := e.jobs[name]; r.Finished() {
		if len(e.tombstones) > 1000 {
			e.tombstones = map[string]backend.Job{}
		}
		e.tombstones[name] = e.snapshot(r)
	}
	delete(e.jobs, name)
	if t, ok := e.timers[name]; ok {
		t.t.Stop()
		delete(e.timers, name)
	}
	e.gpus.release(name)
	e.changed(name)
	return os.RemoveAll(e.jobDir(name))
}
