package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/diagnose"
	"github.com/petrel-dev/petrel/internal/engine/node"
	"github.com/petrel-dev/petrel/internal/logtime"
	"github.com/petrel-dev/petrel/internal/spec"
)

var _ backend.Backend = (*Engine)(nil)

// load reads the store and settles every attempt that was running when
// the previous server stopped: a finished one gets its recorded outcome, a
// live one is re-adopted, a lost one (its shim gone without a status) is
// failed and the retry policy applies.
func (e *Engine) load() error {
	// Only jobs the controllers act on are kept in memory; finished ones
	// are read from the store on demand, so memory does not grow with
	// history. A finished job with a TTL gets its deletion timer here.
	jobs, err := e.store.loadJobs(e.ctx, activeJobs)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	ttl, err := e.store.finishedWithTTL(e.ctx)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	for _, name := range ttl {
		e.enqueue(name)
	}
	if err := e.store.loadRecords(e.ctx, "volumes", func(b []byte) error {
		v := &volumeRecord{}
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
		e.volumes[v.Name] = v
		return nil
	}); err != nil {
		return fmt.Errorf("read volumes: %w", err)
	}
	for _, r := range jobs {
		e.jobs[r.Name] = r
		for i := range r.Attempts {
			a := &r.Attempts[i]
			if a.Phase != backend.PodRunning && a.Phase != backend.PodPending {
				continue
			}
			workers := max(1, len(a.Workers))
			ra := e.newRunningAttempt(r, i, workers)
			handed := 0
			for _, wp := range ra.workers {
				if wp.shim != (node.ShimRef{}) || exists(filepath.Join(wp.dir, node.PidsFile)) || exists(filepath.Join(wp.dir, node.StatusFile)) {
					handed++
				}
			}
			if handed == 0 {
				// Recorded but never handed to a shim: nothing ran for
				// it. Forget it; the Job controller creates it again (no
				// attempt runs twice, none is wrongly failed).
				if err := e.store.deleteAttempt(e.ctx, r.Name, i); err != nil {
					return fmt.Errorf("read state: %w", err)
				}
				r.Attempts = r.Attempts[:i]
				break
			}
			// Metrics already stored are not read twice; those printed
			// while no server ran are read now.
			ra.metrics.off = r.MetricsOffset[i]
			for _, c := range r.Conditions {
				if c.Type == backend.ConditionFailureTarget && c.Reason == backend.ReasonDeadlineExceeded {
					ra.deadline = true
				}
			}
			var gpus []int
			for _, g := range a.GPUs {
				if n, err := strconv.Atoi(g); err == nil {
					gpus = append(gpus, n)
				}
			}
			e.node.GPUs.Reserve(gpus, r.Name)
			e.running[r.Name] = ra
			a.Phase = backend.PodRunning
			e.wg.Add(1)
			go e.tailMetrics(ra)
			for w, wp := range ra.workers {
				switch {
				case exists(filepath.Join(wp.dir, node.StatusFile)):
					// It ended while no server ran: record that before
					// the first sync, as the kubelet reports a pod's end
					// before the Job controller looks at the job again.
					e.workerExited(ra, w)
				case wp.shim == (node.ShimRef{}) && !exists(filepath.Join(wp.dir, node.PidsFile)):
					// A worker of a gang the server died while starting:
					// it never ran, so it starts now, with the rest.
					e.mu.Lock()
					if err := e.startWorker(r, a, ra, w); err != nil {
						e.cfg.Logf("job %s: start worker %d of attempt %d: %v", r.Name, w, i, err)
						ra.workers[w].done = true
						if ra.firstFailed < 0 {
							ra.firstFailed = w
						}
						e.stopGang(r, ra)
					}
					e.mu.Unlock()
				default:
					e.wg.Add(1)
					go e.adopt(ra, w)
				}
			}
		}
	}
	for name := range e.jobs {
		e.enqueue(name)
	}
	return nil
}

// adopt watches worker w of an attempt started by an earlier server: it
// cannot wait() on a process it did not start, so it polls the shim's
// status file and the shim's liveness (pid + start time).
func (e *Engine) adopt(ra *runningAttempt, w int) {
	defer e.wg.Done()
	wp := ra.workers[w]
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if exists(filepath.Join(wp.dir, node.StatusFile)) {
			e.workerExited(ra, w)
			return
		}
		// The shim is the one in pids.json once it started the workload,
		// else the one recorded before it was given the pod (it may
		// still be starting it).
		shim := wp.shim
		var p ShimPids
		if err := node.ReadJSON(filepath.Join(wp.dir, node.PidsFile), &p); err == nil {
			shim = node.ShimRef{Pid: p.ShimPid, StartTicks: p.ShimStartTicks}
		}
		if !shim.Alive() {
			// workerExited reads status.json the shim may have written
			// just before exiting, and reaps the pod if it did not.
			e.workerExited(ra, w)
			return
		}
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Apply implements backend.Backend: volumes first, then jobs; all
// documents were validated by internal/spec. It stops at the first error.
func (e *Engine) Apply(ctx context.Context, docs []*spec.Document) ([]backend.Applied, error) {
	return e.apply(ctx, docs, false)
}

// ApplyReplace is Apply, except that a finished job is replaced by a new
// run (petrel train).
func (e *Engine) ApplyReplace(ctx context.Context, docs []*spec.Document) ([]backend.Applied, error) {
	return e.apply(ctx, docs, true)
}

func (e *Engine) apply(ctx context.Context, docs []*spec.Document, replace bool) ([]backend.Applied, error) {
	if err := e.waitServices(ctx); err != nil {
		return nil, err
	}
	sorted := append([]*spec.Document(nil), docs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].Object.GetKind() == v1alpha1.KindVolume && sorted[j].Object.GetKind() != v1alpha1.KindVolume
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []backend.Applied
	for _, d := range sorted {
		var action string
		var err error
		switch o := d.Object.(type) {
		case *v1alpha1.Volume:
			action, err = e.applyVolume(ctx, o, d.Dir)
		case *v1alpha1.TrainingJob:
			action, err = e.applyJob(ctx, o, d.Dir, d.ShellEnv, replace)
		case *v1alpha1.InferenceService:
			action, err = e.applyService(ctx, o, d.Dir, d.ShellEnv)
		}
		if err != nil {
			return out, err
		}
		out = append(out, backend.Applied{Kind: d.Object.GetKind(), Name: d.Object.GetName(), Action: action})
	}
	return out, nil
}

func (e *Engine) snapshot(r *jobRecord) backend.Job {
	j := r.Job
	j.Attempts = append([]backend.Attempt(nil), r.Attempts...)
	j.Conditions = append([]backend.Condition(nil), r.Conditions...)
	if r.LastMetrics != nil {
		j.LastMetrics = make(map[string]float64, len(r.LastMetrics))
		for k, v := range r.LastMetrics {
			j.LastMetrics[k] = v
		}
	}
	j.Notes = append([]string(nil), r.Notes...)
	j.Labels = r.Labels
	j.Spec.Env = v1alpha1.MaskSecrets(r.Spec.Env) // status never carries secrets
	return j
}

// job returns the record of job name: from memory while the controllers
// act on it, else from the store (a finished job). Caller holds e.mu.
func (e *Engine) job(name string) (*jobRecord, bool) {
	if r, ok := e.jobs[name]; ok {
		return r, true
	}
	r, ok, err := e.store.getJob(e.ctx, name)
	if err != nil {
		e.cfg.Logf("read job %s: %v", name, err)
	}
	return r, ok
}

// GetJob implements backend.Backend.
func (e *Engine) GetJob(ctx context.Context, name string) (*backend.Job, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.job(name)
	if !ok {
		return nil, fmt.Errorf("job %q: %w", name, backend.ErrNotFound)
	}
	j := e.snapshot(r)
	return &j, nil
}

// ListJobs implements backend.Backend: finished jobs from the store, the
// others from memory.
func (e *Engine) ListJobs(ctx context.Context) ([]backend.Job, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	stored, err := e.store.loadJobs(ctx, finishedJobs)
	if err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	out := make([]backend.Job, 0, len(e.jobs)+len(stored))
	for _, r := range stored {
		if _, active := e.jobs[r.Name]; !active {
			out = append(out, e.snapshot(r))
		}
	}
	for _, r := range e.jobs {
		out = append(out, e.snapshot(r))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreationTime.Equal(out[j].CreationTime) {
			return out[i].CreationTime.Before(out[j].CreationTime)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// WatchJob implements backend.Backend.
func (e *Engine) WatchJob(ctx context.Context, name string) (<-chan backend.Job, error) {
	e.mu.Lock()
	r, ok := e.job(name)
	if !ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("job %q: %w", name, backend.ErrNotFound)
	}
	first := e.snapshot(r)
	ch := e.changes(name)
	e.mu.Unlock()
	out := make(chan backend.Job, 1)
	go func() {
		defer close(out)
		cur := first
		for {
			select {
			case out <- cur:
			case <-ctx.Done():
				return
			}
			if cur.Finished() && cur.Active == 0 {
				return // final: finished and no attempt still stopping
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			case <-e.ctx.Done():
				return
			}
			e.mu.Lock()
			r, ok := e.job(name)
			if !ok {
				// Deleted: a job removed as it finished (TTL 0) still
				// reports its final state.
				if tomb, ok := e.tombstones[name]; ok {
					e.mu.Unlock()
					select {
					case out <- tomb:
					case <-ctx.Done():
					}
					return
				}
				e.mu.Unlock()
				return
			}
			cur = e.snapshot(r)
			ch = e.changes(name)
			e.mu.Unlock()
		}
	}()
	return out, nil
}

// Metrics implements backend.Backend.
func (e *Engine) Metrics(ctx context.Context, name string) ([]backend.MetricPoint, error) {
	e.mu.Lock()
	_, ok := e.job(name)
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("job %q: %w", name, backend.ErrNotFound)
	}
	return e.store.metrics(ctx, name)
}

// ListVolumes implements backend.Backend.
func (e *Engine) ListVolumes(ctx context.Context) ([]backend.VolumeStatus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]backend.VolumeStatus, 0, len(e.volumes))
	for _, v := range e.volumes {
		out = append(out, v.VolumeStatus)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete implements backend.Backend.
func (e *Engine) Delete(ctx context.Context, ref backend.Ref) error {
	if err := e.waitServices(ctx); err != nil {
		return err
	}
	if ref.Kind == "service" {
		return e.deleteService(ctx, ref.Name) // drains without holding e.mu
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ref.Kind {
	case "job":
		if _, ok := e.job(ref.Name); !ok {
			return fmt.Errorf("job %q: %w", ref.Name, backend.ErrNotFound)
		}
		return e.deleteJobLocked(ctx, ref.Name)
	case "volume":
		return e.deleteVolume(ctx, ref.Name)
	}
	return fmt.Errorf("cannot delete %q: kinds are job, service and volume", ref.Kind)
}

// GetService implements backend.Backend.
func (e *Engine) GetService(ctx context.Context, name string) (*backend.Service, error) {
	if err := e.waitServices(ctx); err != nil {
		return nil, err
	}
	return e.getService(name)
}

// ListServices implements backend.Backend.
func (e *Engine) ListServices(ctx context.Context) ([]backend.Service, error) {
	if err := e.waitServices(ctx); err != nil {
		return nil, err
	}
	return e.listServices(), nil
}

// Scale implements backend.Backend.
func (e *Engine) Scale(ctx context.Context, name string, replicas int32) error {
	if err := e.waitServices(ctx); err != nil {
		return err
	}
	return e.scaleService(ctx, name, replicas)
}

// Diagnose implements backend.Backend for jobs and services with the
// analysers of internal/diagnose over the engine's status.
func (e *Engine) Diagnose(ctx context.Context, ref backend.Ref) ([]backend.Finding, error) {
	switch ref.Kind {
	case "job":
		j, err := e.GetJob(ctx, ref.Name)
		if err != nil {
			return nil, err
		}
		return diagnose.AnalyzeJob(*j), nil
	case "service":
		s, err := e.GetService(ctx, ref.Name)
		if err != nil {
			return nil, err
		}
		return diagnose.AnalyzeService(*s), nil
	}
	return nil, fmt.Errorf("diagnose %s/%s: the local engine has jobs, services and their pods; %s is a Kubernetes object: add --target kubernetes", ref.Kind, ref.Name, ref.Kind)
}

// Logs implements backend.Backend for jobs: one attempt, or every attempt
// with an "[attempt N] " prefix per line. Follow streams until the job
// finishes.
func (e *Engine) Logs(ctx context.Context, ref backend.Ref, opts backend.LogOptions, w io.Writer) error {
	if ref.Kind == "service" {
		if err := e.waitServices(ctx); err != nil {
			return err
		}
		return e.serviceLogs(ctx, ref.Name, opts, w)
	}
	if ref.Kind != "job" {
		return fmt.Errorf("logs of %s/%s: the local engine has logs of jobs and services", ref.Kind, ref.Name)
	}
	e.mu.Lock()
	_, ok := e.job(ref.Name)
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("job %q: %w", ref.Name, backend.ErrNotFound)
	}
	if opts.Attempt >= 0 {
		return e.streamAttempt(ctx, ref.Name, opts.Attempt, "", opts, w)
	}
	for idx := 0; ; idx++ {
		// Wait for attempt idx to exist, or the job to finish.
		for {
			e.mu.Lock()
			r, ok := e.job(ref.Name)
			if !ok {
				e.mu.Unlock()
				return nil
			}
			n, done := len(r.Attempts), r.Finished() && e.running[ref.Name] == nil
			ch := e.changes(ref.Name)
			e.mu.Unlock()
			if idx < n {
				break
			}
			if done || !opts.Follow {
				return nil
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := e.streamAttempt(ctx, ref.Name, idx, fmt.Sprintf("[attempt %d] ", idx), opts, w); err != nil {
			return err
		}
	}
}

// streamAttempt copies one attempt's log to w line by line with prefix; with
// follow it keeps reading until the attempt has ended and the file is
// drained. Timestamps and SinceSeconds read when each line was written
// from the log's index (logtime).
func (e *Engine) streamAttempt(ctx context.Context, job string, idx int, prefix string, opts backend.LogOptions, w io.Writer) error {
	follow := opts.Follow
	e.mu.Lock()
	r, ok := e.job(job)
	if !ok || idx >= len(r.Attempts) {
		e.mu.Unlock()
		return fmt.Errorf("attempt %d of job %q: %w", idx, job, backend.ErrNotFound)
	}
	e.mu.Unlock()
	path := filepath.Join(attemptDir(e.jobDir(job), idx), LogFile)
	var f *os.File
	var reader *bufio.Reader
	var partial []byte
	lines := logtime.NewFilter(path, opts.Timestamps, opts.SinceSeconds, prefix)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		e.mu.Lock()
		r, ok := e.job(job)
		ended := !ok || idx >= len(r.Attempts) || r.Attempts[idx].Phase != backend.PodRunning
		changed := e.changes(job)
		e.mu.Unlock()
		if f == nil {
			if of, err := os.Open(path); err == nil {
				f, reader = of, bufio.NewReader(of)
			}
		}
		if f != nil {
			for {
				line, err := reader.ReadBytes('\n')
				if len(line) > 0 && line[len(line)-1] == '\n' {
					if _, werr := lines.Write(w, append(partial, line...)); werr != nil {
						return werr
					}
					partial = nil
					continue
				}
				partial = append(partial, line...)
				if err != nil {
					break
				}
			}
		}
		if ended || !follow {
			if len(partial) > 0 {
				_, _ = lines.Write(w, append(partial, '\n'))
			}
			return nil
		}
		// New output shows up on the tick; the attempt's end at once.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-t.C:
		}
	}
}

// waitServices waits until the stored services run again after a start,
// so a service is never "not found" just because the server restarted.
func (e *Engine) waitServices(ctx context.Context) error {
	select {
	case <-e.servicesLoaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
