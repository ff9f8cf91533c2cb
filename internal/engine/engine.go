// Package engine is petrel's local engine: a set of small level-triggered
// reconcilers over a SQLite store that run training jobs (and inference
// services) as processes on this machine with the semantics of their
// Kubernetes counterparts. Engine implements backend.Backend in-process;
// internal/server exposes it over a unix socket.
package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/petrel-dev/petrel/internal/backend"
	jobctl "github.com/petrel-dev/petrel/internal/engine/controllers/job"
	"github.com/petrel-dev/petrel/internal/engine/node"
)

// Config configures an Engine. Zero values take the defaults shown.
type Config struct {
	// Home is the state directory ($PETREL_HOME): state.db, jobs/, volumes/.
	Home string
	// BackoffBase is the first retry delay after a failed attempt (10 s,
	// the Job controller's DefaultJobPodFailureBackOff); it doubles per
	// failure up to BackoffMax (10 min, MaxJobPodFailureBackOff in
	// Kubernetes v1.37's pkg/controller/job/job_controller.go).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// GPUs are the devices to hand out; nil means DiscoverGPUs.
	GPUs []GPU
	// ShimArgv is the argv prefix that runs the shim; the attempt directory
	// is appended. Default: /proc/self/exe shim (this very binary, even
	// after its file was removed).
	ShimArgv []string
	// LBArgv is the argv prefix that runs a service's load-balancer
	// process (serving.RunLB); the service's lb directory is appended.
	// Default: /proc/self/exe lb when ShimArgv is defaulted too; empty
	// (tests that bring their own shim): load balancers run in this
	// process and go down with it.
	LBArgv []string
	// Logf receives the engine's own log lines (default: discard).
	Logf func(format string, args ...any)
	// Clock is the controllers' clock (default: the real one); tests of
	// timing rules inject a fake.
	Clock clock.WithTicker
	// MaxReplicas is the most replicas one service may ask for (replicas,
	// autoscaling.maxReplicas) or be scaled to (default
	// DefaultMaxReplicas; `petrel server --max-replicas` raises it): each
	// replica is a process on this one machine.
	MaxReplicas int32
}

// DefaultMaxReplicas is Config.MaxReplicas's default.
const DefaultMaxReplicas = 64

// Engine runs workloads locally. All methods are safe for concurrent use.
type Engine struct {
	cfg   Config
	store *store

	mu       sync.Mutex
	jobs     map[string]*jobRecord
	volumes  map[string]*volumeRecord
	running  map[string]*runningAttempt // by job name
	services map[string]*serviceState   // by service name (services.go)
	subs     map[string]chan struct{}
	// servicesLoaded is closed once the stored services run again after a
	// start (loadServices); service calls wait for it.
	servicesLoaded chan struct{}
	// node is the pod layer (the local kubelet): GPUs, the environment,
	// cgroups, shims, termination.
	node *node.Node
	// tombstones keep the final state of jobs deleted right after they
	// finished (ttlSecondsAfterFinished: 0) for watchers that were late.
	tombstones map[string]backend.Job

	// queue holds the names of jobs to sync: client-go's delaying work
	// queue, so a job is never synced by two workers at once, a name added
	// twice is synced once, and AddAfter keeps the earliest time asked for.
	queue  workqueue.TypedDelayingInterface[string]
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens (or creates) the state in cfg.Home, re-adopts or settles every
// attempt that was running when the previous server stopped, and starts
// the reconcilers. Close stops them; workloads keep running.
func New(cfg Config) (*Engine, error) {
	if cfg.Home == "" {
		return nil, fmt.Errorf("engine: Home is required")
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = jobctl.DefaultBackoff
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = jobctl.MaxBackoff
	}
	if cfg.MaxReplicas <= 0 {
		cfg.MaxReplicas = DefaultMaxReplicas
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if len(cfg.ShimArgv) == 0 {
		// /proc/self/exe, not os.Executable(): `go run` deletes its
		// binary when it exits, while the server it started keeps running.
		cfg.ShimArgv = []string{"/proc/self/exe", "shim"}
		if len(cfg.LBArgv) == 0 {
			cfg.LBArgv = []string{"/proc/self/exe", "lb"}
		}
	}
	for _, d := range []string{cfg.Home, filepath.Join(cfg.Home, "jobs"), filepath.Join(cfg.Home, "volumes")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory: %w", err)
		}
	}
	if cfg.GPUs == nil {
		gpus, err := DiscoverGPUs(context.Background())
		if err != nil {
			cfg.Logf("GPU discovery failed, running without GPUs: %v", err)
		}
		cfg.GPUs = gpus
	}
	st, err := openStore(filepath.Join(cfg.Home, "state.db"))
	if err != nil {
		return nil, err
	}
	sealer, err := node.LoadSealer(filepath.Join(cfg.Home, node.KeyFile))
	if err != nil {
		st.Close()
		return nil, err
	}
	st.sealer = sealer
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg: cfg, store: st,
		jobs: map[string]*jobRecord{}, volumes: map[string]*volumeRecord{}, running: map[string]*runningAttempt{},
		node: node.New(cfg.ShimArgv, cfg.GPUs), subs: map[string]chan struct{}{}, tombstones: map[string]backend.Job{},
		queue: workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Name: "jobs", Clock: cfg.Clock}),
		ctx:   ctx, cancel: cancel,
	}
	e.node.Sealer = sealer
	if err := e.load(); err != nil {
		st.Close()
		cancel()
		return nil, err
	}
	// Services come back in the background (services.go); calls that touch
	// services wait for them.
	e.servicesLoaded = make(chan struct{})
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(e.servicesLoaded)
		if err := e.loadServices(); err != nil {
			e.cfg.Logf("%v", err)
		}
	}()
	e.wg.Add(1)
	go e.worker()
	return e, nil
}

// Close stops the reconcilers and closes the store. Running workloads are
// left to their shims; the next Engine re-adopts them.
func (e *Engine) Close() error {
	e.cancel()
	e.queue.ShutDown()
	e.node.Close()
	e.wg.Wait()
	e.detachServices()
	return e.store.Close()
}

// GPUs returns the devices the engine manages.
func (e *Engine) GPUs() []GPU { return e.cfg.GPUs }

// LimitsError says why CPU and memory limits are not enforced on this host
// (nil when they are).
func (e *Engine) LimitsError() error { return e.node.LimitsError() }

func (e *Engine) worker() {
	defer e.wg.Done()
	for {
		name, shutdown := e.queue.Get()
		if shutdown {
			return
		}
		start := time.Now()
		e.reconcileJob(name)
		jobSyncDuration.Observe(time.Since(start).Seconds())
		e.queue.Done(name)
	}
}

// enqueue asks for a sync of job name.
func (e *Engine) enqueue(name string) { e.queue.Add(name) }

// enqueueAfter asks for a sync of job name after d (the earliest of all
// pending requests wins; every sync asks again for what it still waits
// for: deadline, back-off, TTL).
func (e *Engine) enqueueAfter(name string, d time.Duration) { e.queue.AddAfter(name, d) }

// changed wakes everyone watching name. Caller holds e.mu.
func (e *Engine) changed(name string) {
	if ch, ok := e.subs[name]; ok {
		close(ch)
		delete(e.subs, name)
	}
}

// changes returns a channel closed at the next change of name. Caller holds e.mu.
func (e *Engine) changes(name string) <-chan struct{} {
	ch, ok := e.subs[name]
	if !ok {
		ch = make(chan struct{})
		e.subs[name] = ch
	}
	return ch
}

// jobSyncDuration is how long one sync of a job takes, as the Job
// controller's job_sync_duration_seconds.
var jobSyncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
	Name:    "petrel_job_sync_duration_seconds",
	Help:    "Time of one sync of a job by the local engine's Job controller, in seconds.",
	Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
})

// Collectors returns the engine's own Prometheus metrics (reconcile
// durations) for the server's /metrics.
func (e *Engine) Collectors() []prometheus.Collector { return []prometheus.Collector{jobSyncDuration} }
