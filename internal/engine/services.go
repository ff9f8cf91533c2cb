package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine/node"
	"github.com/petrel-dev/petrel/internal/expansion"
	"github.com/petrel-dev/petrel/internal/serving"
)

// Inference services run as internal/serving controllers: one per
// service, its load balancer a process of its own (`petrel lb DIR`, in
// services/NAME/lb/) and each replica under its own shim (so CPU and
// memory limits apply as for training attempts).
// The desired state (spec, generation, load-balancer port, a `petrel
// scale` count) is in the store's services table. A server that stops
// leaves the replicas running; the next one adopts those still alive
// (replica.json says which replica a directory holds) and serves on the
// same port again; the load-balancer process never stopped serving it.

// serviceRecord is a service's stored desired state.
type serviceRecord struct {
	Name       string                        `json:"name"`
	Spec       v1alpha1.InferenceServiceSpec `json:"spec"`
	Dir        string                        `json:"dir"` // the spec file's directory
	Generation int64                         `json:"generation"`
	// Port is the load balancer's port, kept across server restarts.
	Port int `json:"port"`
	// Replicas is set by Scale and cleared by the next apply.
	Replicas *int32 `json:"replicas,omitempty"`
	// Labels are the spec's metadata.labels.
	Labels map[string]string `json:"labels,omitempty"`
	// ShellEnv is the submitting shell's PATH, VIRTUAL_ENV … (as a job's),
	// laid over the server's environment for every replica.
	ShellEnv     map[string]string `json:"shellEnv,omitempty"`
	CreationTime time.Time         `json:"creationTime"`
}

// serviceHistory is what a service's controller knew of its replicas (the
// pods) and events, kept in the store so a restarted server goes on with
// the same restart counts, last reasons and events.
type serviceHistory struct {
	Service  string            `json:"service"`
	Replicas []backend.Replica `json:"replicas"`
	Events   []backend.Event   `json:"events"`
}

type serviceState struct {
	rec    *serviceRecord
	svc    *serving.Service
	runner *shimRunner
}

func (e *Engine) serviceDir(name string) string {
	return filepath.Join(e.cfg.Home, "services", filepath.Base(filepath.Clean("/"+name)))
}

// serviceEnv returns the replicas' extra environment (each mount's pathEnv
// set to the volume's directory) and working directory.
func (e *Engine) serviceEnv(rec *serviceRecord) ([]string, string, error) {
	env := []string{"PETREL_SERVICE_NAME=" + rec.Name}
	vars := map[string]string{"PETREL_SERVICE_NAME": rec.Name}
	for _, m := range rec.Spec.Volumes {
		if _, ok := e.volumes[m.Name]; !ok {
			return nil, "", fmt.Errorf("service %q mounts volume %q, which does not exist; apply the Volume first (e.g. in the same file)", rec.Name, m.Name)
		}
		if m.PathEnv != "" {
			env = append(env, m.PathEnv+"="+e.volumePath(m.Name))
			vars[m.PathEnv] = e.volumePath(m.Name)
		}
	}
	wd := rec.Dir
	if w := rec.Spec.WorkingDir; w != "" {
		wd = expansion.Expand(w, expansion.Map(vars))
		if !filepath.IsAbs(wd) {
			wd = filepath.Join(rec.Dir, wd)
		}
	}
	if st, err := os.Stat(wd); err != nil || !st.IsDir() {
		return nil, "", fmt.Errorf("service %q: workingDir %q is not a directory; fix spec.workingDir (relative paths start at the spec file's directory)", rec.Name, wd)
	}
	if len(rec.Spec.Command) > 0 && !strings.Contains(rec.Spec.Command[0], "$(") {
		path := os.Getenv("PATH")
		if p, ok := rec.ShellEnv["PATH"]; ok {
			path = p
		}
		if _, err := node.LookPath(rec.Spec.Command[0], wd, path); err != nil {
			return nil, "", fmt.Errorf("service %q: %v; fix spec.command", rec.Name, err)
		}
	}
	return env, wd, nil
}

// startService starts the controller for rec on its recorded port (a new
// one when 0 or taken). Caller holds e.mu.
func (e *Engine) startService(rec *serviceRecord, adopt []serving.AdoptedReplica, events []backend.Event) (*serviceState, error) {
	env, wd, err := e.serviceEnv(rec)
	if err != nil {
		return nil, err
	}
	runner := &shimRunner{e: e, shellEnv: rec.ShellEnv}
	cfg := serving.Config{Name: rec.Name, Spec: rec.Spec, Generation: rec.Generation, Runner: runner,
		Env: env, Dir: wd, LogDir: filepath.Join(e.serviceDir(rec.Name), "replicas"), Addr: "127.0.0.1:0", Adopt: adopt,
		Events: events, OnChange: func(s backend.Service) {
			h := serviceHistory{Service: rec.Name, Replicas: s.Replicas, Events: s.Events}
			if err := e.store.putRecord(e.ctx, "service_status", rec.Name, h); err != nil && e.ctx.Err() == nil {
				e.cfg.Logf("record service %s status: %v", rec.Name, err)
			}
		}}
	if rec.Port != 0 {
		cfg.Addr = "127.0.0.1:" + strconv.Itoa(rec.Port)
	}
	if len(e.cfg.LBArgv) > 0 {
		// The data plane outside the control plane: the service's port is
		// held by its own process, adopted here when it still runs.
		rcfg := serving.RemoteConfig{Service: rec.Name, Dir: filepath.Join(e.serviceDir(rec.Name), "lb"),
			Addr: cfg.Addr, Argv: e.cfg.LBArgv, Logf: e.cfg.Logf}
		rb, err := serving.OpenRemoteBalancer(rcfg)
		if err != nil && rec.Port != 0 {
			e.cfg.Logf("service %s: port %d: %v; taking a new port", rec.Name, rec.Port, err)
			rcfg.Addr = "127.0.0.1:0"
			rb, err = serving.OpenRemoteBalancer(rcfg)
		}
		if err != nil {
			return nil, err
		}
		cfg.Balancer = rb
	}
	svc, err := serving.NewService(cfg)
	if err != nil && rec.Port != 0 && cfg.Balancer == nil {
		e.cfg.Logf("service %s: port %d: %v; taking a new port", rec.Name, rec.Port, err)
		cfg.Addr = "127.0.0.1:0"
		svc, err = serving.NewService(cfg)
	}
	if err != nil {
		if cfg.Balancer != nil {
			cfg.Balancer.Close() //nolint:errcheck
		}
		return nil, err
	}
	if u, err := url.Parse(svc.URL()); err == nil {
		rec.Port, _ = strconv.Atoi(u.Port())
	}
	if rec.Replicas != nil {
		_ = svc.Scale(*rec.Replicas)
	}
	return &serviceState{rec: rec, svc: svc, runner: runner}, nil
}

// applyService creates or updates a service; a changed spec is rolled out
// as a new generation. Caller holds e.mu.
func (e *Engine) applyService(ctx context.Context, o *v1alpha1.InferenceService, dir string, shellEnv map[string]string) (string, error) {
	name := o.Metadata.Name
	if err := e.node.Admit("service", name, &o.Spec.PodTemplate); err != nil {
		return "", err
	}
	most := int32(1)
	if o.Spec.Replicas != nil {
		most = *o.Spec.Replicas
	}
	if a := o.Spec.Autoscaling; a != nil {
		most = a.MaxReplicas
	}
	if err := e.checkReplicas(name, most); err != nil {
		return "", err
	}
	if e.services == nil {
		e.services = map[string]*serviceState{}
	}
	if st, ok := e.services[name]; ok {
		if reflect.DeepEqual(st.rec.Spec, o.Spec) && st.rec.Dir == dir {
			if st.rec.Replicas == nil {
				return "unchanged", nil
			}
			// Scaled by hand: applying the spec gives it back the replica
			// count (autoscaling resumes), as on Kubernetes.
			rec := *st.rec
			rec.Replicas = nil
			if err := e.putService(ctx, &rec); err != nil {
				return "", fmt.Errorf("record service %q: %w", name, err)
			}
			st.rec = &rec
			st.svc.ResetScale()
			return "configured", nil
		}
		rec := *st.rec
		rec.Spec, rec.Dir, rec.Replicas, rec.Labels, rec.ShellEnv = o.Spec, dir, nil, o.Metadata.Labels, shellEnv
		rec.Generation++
		st.runner.setShellEnv(shellEnv)
		env, wd, err := e.serviceEnv(&rec)
		if err != nil {
			return "", err
		}
		if err := st.svc.Update(rec.Spec, rec.Generation, env, wd); err != nil {
			return "", err
		}
		st.rec = &rec
		if err := e.putService(ctx, st.rec); err != nil {
			return "", fmt.Errorf("record service %q: %w", name, err)
		}
		return "configured", nil
	}
	rec := &serviceRecord{Name: name, Spec: o.Spec, Dir: dir, Generation: 1, CreationTime: time.Now(), Labels: o.Metadata.Labels, ShellEnv: shellEnv}
	st, err := e.startService(rec, nil, nil)
	if err != nil {
		return "", err
	}
	if err := e.putService(ctx, rec); err != nil {
		st.svc.Delete(context.Background()) //nolint:errcheck
		return "", fmt.Errorf("record service %q: %w", name, err)
	}
	e.services[name] = st
	return "created", nil
}

// loadServices starts every stored service again after stopping replicas
// a previous server left running. New runs it in the background.
func (e *Engine) loadServices() error {
	var recs []*serviceRecord
	if err := e.store.loadRecords(e.ctx, "services", func(b []byte) error {
		r := &serviceRecord{}
		if err := json.Unmarshal(b, r); err != nil {
			return err
		}
		if err := e.store.open(r.Spec.Env); err != nil {
			return fmt.Errorf("service %s: %w", r.Name, err)
		}
		recs = append(recs, r)
		return nil
	}); err != nil {
		if e.ctx.Err() != nil {
			return nil // closed before the services were read
		}
		return fmt.Errorf("read services: %w", err)
	}
	history := map[string]serviceHistory{}
	if err := e.store.loadRecords(e.ctx, "service_status", func(b []byte) error {
		var h serviceHistory
		if err := json.Unmarshal(b, &h); err != nil {
			return err
		}
		history[h.Service] = h
		return nil
	}); err != nil && e.ctx.Err() == nil {
		e.cfg.Logf("read service status: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.services == nil {
		e.services = map[string]*serviceState{}
	}
	for _, rec := range recs {
		if e.ctx.Err() != nil {
			return nil // closing
		}
		if _, ok := e.services[rec.Name]; ok {
			continue // applied again meanwhile
		}
		adopted := e.adoptReplicas(filepath.Join(e.serviceDir(rec.Name), "replicas"))
		h := history[rec.Name]
		for i := range adopted {
			for _, r := range h.Replicas {
				if r.Index == adopted[i].Index {
					adopted[i].Restarts, adopted[i].LastReason = r.Restarts, r.LastReason
				}
			}
		}
		st, err := e.startService(rec, adopted, h.Events)
		if err != nil {
			e.cfg.Logf("service %s cannot start again: %v", rec.Name, err)
			continue
		}
		e.services[rec.Name] = st
		_ = e.putService(e.ctx, rec)
	}
	return nil
}

// checkReplicas refuses a replica count over Config.MaxReplicas.
func (e *Engine) checkReplicas(name string, n int32) error {
	if n > e.cfg.MaxReplicas {
		return fmt.Errorf("service %q asks for %d replicas, more than this machine's limit of %d processes per service; lower it, or raise the limit with `petrel server --max-replicas N` (PETREL_MAX_REPLICAS)", name, n, e.cfg.MaxReplicas)
	}
	return nil
}

// putService stores a service's desired state, secret values sealed.
func (e *Engine) putService(ctx context.Context, rec *serviceRecord) error {
	sealed := *rec
	sealed.Spec.Env = e.store.sealer.SealEnv(rec.Spec.Env)
	return e.store.putRecord(ctx, "services", rec.Name, &sealed)
}

// detachServices stops every service's controller and load balancer
// (Close calls it after the reconcilers stopped) and leaves the replicas
// running under their shims, as training attempts are; the next server
// adopts them and serves on the same port again.
func (e *Engine) detachServices() {
	e.mu.Lock()
	states := make([]*serviceState, 0, len(e.services))
	for _, st := range e.services {
		states = append(states, st)
	}
	e.services = nil
	e.mu.Unlock()
	for _, st := range states {
		st.svc.Detach()
	}
}

func (e *Engine) serviceStatus(st *serviceState) backend.Service {
	s := st.svc.Status()
	s.Spec.Env = v1alpha1.MaskSecrets(s.Spec.Env) // status never carries secrets
	s.CreationTime = st.rec.CreationTime
	s.Labels = st.rec.Labels
	for i := range s.Replicas {
		s.Replicas[i].Node = "local"
	}
	return s
}

func (e *Engine) lookupService(name string) (*serviceState, error) {
	st, ok := e.services[name]
	if !ok {
		return nil, fmt.Errorf("service %q: %w", name, backend.ErrNotFound)
	}
	return st, nil
}

// getService implements GetService.
func (e *Engine) getService(name string) (*backend.Service, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := e.lookupService(name)
	if err != nil {
		return nil, err
	}
	s := e.serviceStatus(st)
	return &s, nil
}

// listServices implements ListServices, by name.
func (e *Engine) listServices() []backend.Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]backend.Service, 0, len(e.services))
	for _, st := range e.services {
		out = append(out, e.serviceStatus(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// scaleService implements Scale: autoscaling is off until the next apply.
func (e *Engine) scaleService(ctx context.Context, name string, replicas int32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := e.lookupService(name)
	if err != nil {
		return err
	}
	if err := e.checkReplicas(name, replicas); err != nil {
		return err
	}
	if err := st.svc.Scale(replicas); err != nil {
		return err
	}
	st.rec.Replicas = &replicas
	return e.putService(ctx, st.rec)
}

// deleteService drains and stops the replicas, then forgets the service.
func (e *Engine) deleteService(ctx context.Context, name string) error {
	e.mu.Lock()
	st, err := e.lookupService(name)
	if err == nil {
		delete(e.services, name)
		err = e.store.deleteRecord(ctx, "services", name)
	}
	e.mu.Unlock()
	if st == nil {
		return err
	}
	if derr := st.svc.Delete(ctx); derr != nil {
		return derr
	}
	if derr := e.store.deleteRecord(ctx, "service_status", name); derr != nil && err == nil {
		err = derr
	}
	_ = os.RemoveAll(e.serviceDir(name))
	return err
}

// serviceLogs implements Logs for services.
func (e *Engine) serviceLogs(ctx context.Context, name string, opts backend.LogOptions, w io.Writer) error {
	e.mu.Lock()
	st, err := e.lookupService(name)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	return st.svc.LogsStamped(ctx, opts.Replica, opts.Follow, opts.Timestamps, opts.SinceSeconds, w)
}

// shimRunner starts each replica through the pod layer, as a job's
// attempt: the same environment rules, GPUs, cgroup limits and shim.
type shimRunner struct {
	e *Engine
	// shellEnv is the service's recorded shell environment (guarded by
	// mu: an apply changes it while replicas start).
	mu       sync.Mutex
	shellEnv map[string]string
}

func (r *shimRunner) setShellEnv(env map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shellEnv = env
}

// Forget implements serving.Forgetter: a replica stopped on purpose
// leaves no directory, so the next server does not restart it as one that
// died while it was away (adoptReplicas).
func (r *shimRunner) Forget(rs serving.ReplicaSpec) {
	if rs.LogPath != "" {
		_ = os.RemoveAll(filepath.Dir(rs.LogPath))
	}
}

// Start implements serving.Runner.
func (r *shimRunner) Start(_ context.Context, rs serving.ReplicaSpec) (serving.Proc, error) {
	if rs.LogPath == "" {
		return nil, errors.New("replica has no log directory")
	}
	dir := filepath.Dir(rs.LogPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create replica directory: %w", err)
	}
	// GPUs as for a job's attempt: exclusive whole devices, all or none;
	// a replica that cannot get them waits Pending (serving.ErrUnschedulable).
	owner := replicaGPUOwner(rs.Service, rs.Name)
	var gpus []int
	if need := int(rs.Template.Resources.GPU); need > 0 {
		if gpus = r.e.node.GPUs.Allocate(need, owner); gpus == nil {
			return nil, fmt.Errorf("waiting for %d GPUs, %d free: %w", need, r.e.node.GPUs.Free(), serving.ErrUnschedulable)
		}
	}
	started := false
	defer func() {
		if !started {
			r.e.releaseGPUs(owner)
		}
	}()
	// The service resolved workingDir already (rs.Dir).
	tmpl := rs.Template
	tmpl.WorkingDir = ""
	r.mu.Lock()
	shellEnv := r.shellEnv
	r.mu.Unlock()
	cfg, err := r.e.node.Prepare(node.PodSpec{Name: "svc-" + rs.Name, Template: &tmpl, BaseDir: rs.Dir, ShellEnv: shellEnv, Vars: rs.Vars, GPUs: gpus})
	if err != nil {
		err = errors.New(v1alpha1.MaskSecretValues(err.Error(), tmpl.Env))
		_ = os.WriteFile(rs.LogPath, []byte("petrel: "+err.Error()+"\n"), 0o600)
		return nil, err
	}
	if err := node.WriteJSONAtomic(filepath.Join(dir, replicaFile), replicaInfo{rs.Index, rs.Generation, rs.Port, gpus}); err != nil {
		return nil, fmt.Errorf("write replica record: %w", err)
	}
	// replica.json (written above) names the replica; the shim is found
	// from pids.json on adoption.
	shim, err := r.e.node.Start(dir, cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("start the shim for replica %s: %w", rs.Name, err)
	}
	started = true
	p := newShimProc(dir, shim.Process.Pid)
	p.onExit = func() { r.e.releaseGPUs(owner) }
	go func() {
		_ = shim.Wait()
		p.finish()
	}()
	return p, nil
}

// replicaFile records which replica a directory holds, for adoption.
const replicaFile = "replica.json"

type replicaInfo struct {
	Index      int   `json:"index"`
	Generation int64 `json:"generation"`
	Port       int   `json:"port"`
	GPUs       []int `json:"gpus,omitempty"`
}

// replicaGPUOwner names a replica in the GPU allocator.
func replicaGPUOwner(service, replica string) string { return "service/" + service + "/" + replica }

// releaseGPUs frees owner's devices and, when it held any, lets every pod
// waiting for GPUs try again (jobs and replicas alike).
func (e *Engine) releaseGPUs(owner string) {
	if !e.node.GPUs.Release(owner) {
		return
	}
	go func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.requeueGPUWaiters()
	}()
}

// requeueServiceGPUWaiters asks every service to retry its replicas that
// wait for GPUs. Caller holds e.mu.
func (e *Engine) requeueServiceGPUWaiters() {
	for _, st := range e.services {
		go st.svc.Retry()
	}
}

func newShimProc(dir string, shimPid int) *shimProc {
	return &shimProc{dir: dir, pid: shimPid, wait: make(chan serving.Exit, 1), done: make(chan struct{})}
}

// finish reports the replica's exit from the shim's status file (a lost
// shim without one is an Error with code 128).
func (p *shimProc) finish() {
	if p.onExit != nil {
		p.onExit()
	}
	var st node.ShimStatus
	ex := serving.Exit{Code: 128, Reason: backend.ReasonError}
	if err := node.ReadJSON(filepath.Join(p.dir, node.StatusFile), &st); err == nil {
		ex.Code, ex.Signal, ex.Reason = int(st.ExitCode), st.Signal, st.Reason()
	}
	p.wait <- ex
	close(p.wait)
	close(p.done)
}

// watchAdopted waits for an adopted replica (whose shim is not our child,
// so it cannot be wait()ed) by polling its status file and its shim's
// liveness, as adopt does for training attempts.
func (p *shimProc) watchAdopted(ctx context.Context, pids ShimPids) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(filepath.Join(p.dir, node.StatusFile)); err == nil {
			p.finish()
			return
		}
		if !node.Alive(pids.ShimPid, pids.ShimStartTicks) {
			if _, err := os.Stat(filepath.Join(p.dir, node.StatusFile)); err != nil {
				node.ReapLost(p.dir) // a workload without its shim is lost
			}
			p.finish()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adoptReplicas returns the replicas under dir whose shim and workload
// still run (left by a previous server) and stops and removes the rest.
func (e *Engine) adoptReplicas(dir string) []serving.AdoptedReplica {
	var out []serving.AdoptedReplica
	entries, _ := os.ReadDir(dir)
	for _, ent := range entries {
		rdir := filepath.Join(dir, ent.Name())
		var p ShimPids
		var info replicaInfo
		pidsErr := node.ReadJSON(filepath.Join(rdir, node.PidsFile), &p)
		infoErr := node.ReadJSON(filepath.Join(rdir, replicaFile), &info)
		if pidsErr == nil && infoErr == nil && node.Alive(p.ShimPid, p.ShimStartTicks) && node.Alive(p.Pid, p.StartTicks) {
			proc := newShimProc(rdir, p.ShimPid)
			owner := replicaGPUOwner(filepath.Base(filepath.Dir(dir)), ent.Name())
			e.node.GPUs.Reserve(info.GPUs, owner)
			proc.onExit = func() { e.releaseGPUs(owner) }
			go proc.watchAdopted(e.ctx, p)
			out = append(out, serving.AdoptedReplica{Index: info.Index, Generation: info.Generation, Port: info.Port, Proc: proc, StartTime: p.Started})
			continue
		}
		if pidsErr == nil {
			if _, err := os.Stat(filepath.Join(rdir, node.StatusFile)); err != nil {
				node.ReapLost(rdir)
			}
			if node.Alive(p.ShimPid, p.ShimStartTicks) {
				_ = syscall.Kill(p.ShimPid, syscall.SIGKILL)
			}
		}
		if infoErr != nil {
			_ = os.RemoveAll(rdir) // not a replica this engine can name
			continue
		}
		// The replica ended while no server ran. It is handed over as a
		// process that has already exited, so the controller does what it
		// does for any exit: the same name, RESTARTS + 1, the exit code and
		// reason recorded (status.json, or 128/Error when the shim died
		// too), a BackOff event, its log kept, a restart after the
		// back-off — as a kubelet restart finds a container that exited.
		proc := newShimProc(rdir, p.ShimPid)
		proc.finish()
		out = append(out, serving.AdoptedReplica{Index: info.Index, Generation: info.Generation, Port: info.Port, Proc: proc, StartTime: p.Started})
	}
	return out
}

// shimProc is a replica under its shim. Pid is the shim's: the workload
// is its child, so the process tree (CPU metric) covers it; signals go to
// the workload's process group from pids.json.
type shimProc struct {
	dir  string
	pid  int // the shim's
	wait chan serving.Exit
	done chan struct{} // closed once the shim has exited
	// onExit runs once the replica has ended (releases its GPUs).
	onExit func()
}

func (p *shimProc) Pid() int                  { return p.pid }
func (p *shimProc) Wait() <-chan serving.Exit { return p.wait }

func (p *shimProc) Signal(sig syscall.Signal) error {
	var pids ShimPids
	for i := 0; i < 100; i++ { // the shim writes pids.json right after starting the workload
		if err := node.ReadJSON(filepath.Join(p.dir, node.PidsFile), &pids); err == nil {
			break
		}
		select {
		case <-p.done:
			return nil // ended before it started
		case <-time.After(20 * time.Millisecond):
		}
	}
	if pids.Pid == 0 || !node.Alive(pids.Pid, pids.StartTicks) {
		return nil
	}
	if err := syscall.Kill(-pids.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal replica process group %d: %w", pids.Pid, err)
	}
	return nil
}
