package serving

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/expansion"
)

// Replica phases reported in backend.Replica.Phase.
const (
	PhasePending     = "Pending"
	PhaseRunning     = "Running"
	PhaseTerminating = "Terminating"
	// PhaseBackOff is a replica waiting to be restarted after it exited
	// (a container in CrashLoopBackOff).
	PhaseBackOff = "CrashLoopBackOff"
)

// ReasonUnschedulable is a Pending replica's last reason while it cannot
// be placed (PodScheduled=False's reason on Kubernetes).
const ReasonUnschedulable = "Unschedulable"

// maxEvents is how many recent events a service keeps.
const maxEvents = 100

// Config configures one Service controller.
type Config struct {
	// Name is the service's name (metadata.name).
	Name string
	// Spec is the desired state; Generation identifies it (default 1).
	Spec       v1alpha1.InferenceServiceSpec
	Generation int64
	// Runner starts replica processes (default ExecRunner).
	Runner Runner
	// Env is extra environment placed after PORT and before spec.env, e.g.
	// the pathEnv variables of mounted volumes, as KEY=VALUE.
	Env []string
	// Dir is the replicas' working directory.
	Dir string
	// LogDir holds a directory per replica, LogDir/REPLICA/, with its log
	// in output.log ("" = no logs).
	LogDir string
	// Addr is the load balancer's listen address (default 127.0.0.1:0, an
	// assigned port). Unused when Balancer is set.
	Addr string
	// Balancer, when set, routes the service's traffic (the local engine
	// gives a RemoteBalancer, whose process outlives the server); nil: an
	// in-process LoadBalancer listening on Addr.
	Balancer Balancer
	// SyncPeriod is the autoscaler's sync period (default 15 s, the HPA
	// controller's --horizontal-pod-autoscaler-sync-period).
	SyncPeriod time.Duration
	// BackOff sets the restart back-off (zero: kubelet's 10 s / 5 min / 10 min).
	BackOff CrashLoopBackOff
	// OnEvent, when set, receives every event as it happens.
	OnEvent func(backend.Event)
	// OnChange, when set, receives the service's status after changes
	// (coalesced, from a goroutine of its own, never under the service's
	// lock): the local engine keeps replicas and events in its store.
	OnChange func(backend.Service)
	// Events are the events of an earlier controller of this service
	// (restored from the store after a server restart), oldest first.
	Events []backend.Event
	// Clock drives the autoscaler's windows (default the real clock).
	Clock clock.Clock
	// Adopt lists replica processes a previous controller left running
	// (see Detach); they are taken over instead of started, as the
	// kubelet keeps running containers across its own restart.
	Adopt []AdoptedReplica
}

// AdoptedReplica is a running replica handed from a detached Service (or
// a previous server) to a new one.
type AdoptedReplica struct {
	Index      int
	Generation int64
	Port       int
	Proc       Proc
	// StartTime is when the process started (probes' initialDelaySeconds
	// count from it).
	StartTime time.Time
	// Restarts and LastReason carry the replica's history across the
	// adoption, as a pod's restartCount and lastState survive a kubelet
	// restart.
	Restarts   int32
	LastReason string
}

type replica struct {
	index      int
	name       string
	generation int64
	port       int
	spec       ReplicaSpec
	grace      time.Duration

	proc      Proc
	startTime time.Time
	// podStart is the pod's status.startTime: the first start, kept across
	// restarts (zero: never started, a Pending pod to the HPA).
	podStart time.Time
	phase    string
	ready    bool
	// readySince is the Ready condition's lastTransitionTime.
	readySince  time.Time
	restarts    int32
	lastReason  string
	logTail     []string // last lines of output at the last exit
	killReason  string
	backoff     CrashLoopBackOff
	restartAt   time.Time
	stopProbes  context.CancelFunc
	terminating bool
	removed     chan struct{} // closed when the replica is fully gone
}

// Service is the controller of one InferenceService on this machine: it
// keeps spec.replicas (or the autoscaler's count) of replica processes
// running, restarts them with CrashLoopBackOff, probes them, routes the
// load balancer to the ready ones, scales them with the HPA algorithm,
// drains them on scale-down, and rolls them on a spec change with
// maxSurge/maxUnavailable. All methods are safe for concurrent use.
type Service struct {
	cfg    Config
	lb     Balancer
	runner Runner
	clock  clock.Clock

	mu          sync.Mutex
	spec        v1alpha1.InferenceServiceSpec
	generation  int64
	desired     int32
	autoscaler  *Autoscaler
	manual      bool // Scale was called: autoscaling off until Update
	replicas    []*replica
	nextIndex   int
	events      []backend.Event
	metric      string
	conditions  []backend.Condition // last reported, for transition times
	created     time.Time
	deleted     bool
	detached    bool          // Detach: replicas left running for a successor
	changed     chan struct{} // closed and replaced on every change
	changeCh    chan struct{} // a change to report to Config.OnChange
	cpu         *CPUSampler
	pokeCh      chan struct{}
	ctx         context.Context
	cancel      context.CancelFunc
	loops       sync.WaitGroup
	terminators sync.WaitGroup
}

// NewService validates cfg and starts the service: the load balancer
// listens, replicas start, and the reconcile and autoscaling loops run
// until Delete.
func NewService(cfg Config) (*Service, error) {
	if cfg.Runner == nil {
		cfg.Runner = ExecRunner{}
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.Generation == 0 {
		cfg.Generation = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if len(cfg.Spec.Command) == 0 {
		return nil, fmt.Errorf("service %q has no command; set spec.command", cfg.Name)
	}
	s := &Service{cfg: cfg, lb: cfg.Balancer, runner: cfg.Runner, clock: cfg.Clock,
		changed: make(chan struct{}), pokeCh: make(chan struct{}, 1), created: time.Now()}
	if err := s.setSpecLocked(cfg.Spec, cfg.Generation); err != nil {
		return nil, err
	}
	if s.lb == nil {
		lb := NewLoadBalancer(cfg.Name)
		if _, err := lb.Listen(cfg.Addr); err != nil {
			return nil, err
		}
		s.lb = lb
	}
	cpu, err := NewCPUSampler()
	if err != nil {
		s.lb.Close()
		return nil, err
	}
	s.cpu = cpu
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.Lock()
	s.events = append(s.events, cfg.Events...)
	if len(s.events) > maxEvents {
		s.events = slices.Delete(s.events, 0, len(s.events)-maxEvents)
	}
	s.changeCh = make(chan struct{}, 1)
	var keep []string
	for _, a := range cfg.Adopt {
		r := s.addReplicaLocked(a.Index, a.Generation, a.Port)
		r.restarts, r.lastReason = a.Restarts, a.LastReason
		// An adopted replica keeps the readiness its load balancer holds
		// until its probes say otherwise, so a server restart takes no
		// ready replica out of rotation (an in-process balancer is new
		// and holds none).
		s.attachLocked(r, a.Proc, a.StartTime, "Adopted", "adopted", s.lb.IsReady(r.name))
		s.nextIndex = max(s.nextIndex, a.Index+1)
		keep = append(keep, r.name)
	}
	s.lb.Retain(keep) // replicas that died while no controller ran
	if es, ok := s.lb.(EventSource); ok {
		es.SetEventRecorder(s.recordEvent)
	}
	// An autoscaled service goes on with the count its replicas show, as
	// a Deployment's spec.replicas outlives the HPA controller's restart;
	// the autoscaler then decides from there with its usual windows.
	if as := s.autoscaler; as != nil {
		n := int32(0)
		for _, a := range cfg.Adopt {
			if a.Generation == cfg.Generation {
				n++
			}
		}
		s.desired = min(max(s.desired, n), as.MaxReplicas)
	}
	s.mu.Unlock()
	s.loops.Add(3)
	go s.reconcileLoop()
	go s.autoscaleLoop()
	go s.reportLoop()
	s.poke()
	return s, nil
}

// setSpecLocked installs a spec: a new autoscaler when autoscaling is set
// (keeping the current count), else spec.replicas (default 1).
func (s *Service) setSpecLocked(spec v1alpha1.InferenceServiceSpec, gen int64) error {
	var as *Autoscaler
	if spec.Autoscaling != nil {
		var err error
		if as, err = NewAutoscaler(spec.Autoscaling, s.cfg.Clock); err != nil {
			return fmt.Errorf("service %q: %w", s.cfg.Name, err)
		}
		if as.Kind == MetricCPU && (spec.Resources.CPU == nil || spec.Resources.CPU.MilliValue() == 0) {
			return fmt.Errorf("service %q autoscales on CPU but has no CPU request; set spec.resources.cpu (e.g. \"500m\")", s.cfg.Name)
		}
	}
	s.spec, s.generation, s.autoscaler = spec, gen, as
	s.resetScaleLocked()
	return nil
}

// resetScaleLocked gives the spec back control of the replica count: the
// autoscaler within its bounds, else spec.replicas (default 1).
func (s *Service) resetScaleLocked() {
	s.manual = false
	switch as := s.autoscaler; {
	case as != nil && s.desired == 0:
		s.desired = as.MinReplicas
	case as != nil:
		s.desired = min(max(s.desired, as.MinReplicas), as.MaxReplicas)
	case s.spec.Replicas != nil:
		s.desired = *s.spec.Replicas
	default:
		s.desired = 1
	}
}

// ResetScale ends a manual Scale without a spec change (serve -f of the
// same spec): autoscaling resumes, or spec.replicas applies again, as
// re-applying a Deployment and its HPA does on Kubernetes.
func (s *Service) ResetScale() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.manual {
		return
	}
	s.resetScaleLocked()
	s.eventLocked("Normal", "ScalingReplicaSet", fmt.Sprintf("manual scale ended: %d replicas, as the spec says", s.desired))
	s.poke()
}

// URL is the service's stable endpoint, e.g. http://127.0.0.1:40123.
func (s *Service) URL() string { return s.lb.URL() }

// Balancer returns the service's load balancer.
func (s *Service) Balancer() Balancer { return s.lb }

// Update applies a changed spec (and the environment and working
// directory that come with it, as Config.Env and Config.Dir) with a new
// generation: replicas of older generations are replaced by a rolling
// update. Autoscaling resumes if Scale turned it off. A generation not
// above the current one is replaced by current+1.
func (s *Service) Update(spec v1alpha1.InferenceServiceSpec, generation int64, env []string, dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted {
		return fmt.Errorf("service %q is being deleted; apply it again once it is gone", s.cfg.Name)
	}
	if len(spec.Command) == 0 {
		return fmt.Errorf("service %q has no command; set spec.command", s.cfg.Name)
	}
	if generation <= s.generation {
		generation = s.generation + 1
	}
	if err := s.setSpecLocked(spec, generation); err != nil {
		return err
	}
	s.cfg.Env, s.cfg.Dir = slices.Clone(env), dir
	s.eventLocked("Normal", "ScalingReplicaSet", fmt.Sprintf("rolling update to generation %d", generation))
	s.poke()
	return nil
}

// Generation returns the generation of the current spec.
func (s *Service) Generation() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.generation
}

// Scale sets the replica count and turns autoscaling off until the next
// Update (as `kubectl scale` on a Deployment whose HPA is removed).
func (s *Service) Scale(replicas int32) error {
	if replicas < 0 {
		return fmt.Errorf("replicas must be 0 or more, got %d", replicas)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manual = true
	if s.desired != replicas {
		s.eventLocked("Normal", "ScalingReplicaSet", fmt.Sprintf("scaled from %d to %d by request", s.desired, replicas))
	}
	s.desired = replicas
	s.poke()
	return nil
}

// Retry asks the service to try its Pending, unschedulable replicas again
// now (the engine calls it when GPUs are released).
func (s *Service) Retry() {
	s.mu.Lock()
	now := time.Now()
	for _, r := range s.replicas {
		if r.proc == nil && !r.terminating && r.lastReason == ReasonUnschedulable {
			r.restartAt = now
		}
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Service) poke() {
	select {
	case s.pokeCh <- struct{}{}:
	default:
	}
}

// notifyLocked wakes everyone waiting in Wait and has the change reported
// to OnChange.
func (s *Service) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
	select {
	case s.changeCh <- struct{}{}:
	default:
	}
}

// reportLoop hands the status to OnChange after changes, coalescing
// bursts, until the service is deleted or detached.
func (s *Service) reportLoop() {
	defer s.loops.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.changeCh:
		}
		if s.cfg.OnChange != nil {
			s.cfg.OnChange(s.Status())
		}
	}
}

// recordEvent records an event from outside the service's lock (its load
// balancer's outages).
func (s *Service) recordEvent(typ, reason, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventLocked(typ, reason, msg)
}

func (s *Service) eventLocked(typ, reason, msg string) {
	ev := backend.Event{Time: time.Now(), Type: typ, Reason: reason, Message: msg}
	s.events = append(s.events, ev)
	if len(s.events) > maxEvents {
		s.events = slices.Delete(s.events, 0, len(s.events)-maxEvents)
	}
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
	s.notifyLocked()
}

func (s *Service) reconcileLoop() {
	defer s.loops.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.pokeCh:
		case <-timer.C:
		}
		next := s.reconcile()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// reconcile compares desired with observed replicas and acts; it returns
// when to look again (the earliest pending restart).
func (s *Service) reconcile() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	wake := time.Hour
	if s.deleted {
		return wake
	}
	now := time.Now()
	// Restart replicas whose back-off has passed.
	for _, r := range s.replicas {
		if r.terminating || r.proc != nil || r.restartAt.IsZero() {
			continue
		}
		if d := r.restartAt.Sub(now); d > 0 {
			wake = min(wake, d)
			continue
		}
		r.restartAt = time.Time{}
		s.startLocked(r)
	}

	n := int(s.desired)
	var cur, old []*replica
	for _, r := range s.replicas {
		switch {
		case r.terminating:
		case r.generation == s.generation:
			cur = append(cur, r)
		default:
			old = append(old, r)
		}
	}
	if len(old) == 0 {
		for len(cur) < n {
			cur = append(cur, s.createLocked())
		}
		if len(cur) > n {
			for _, r := range pickForDeletion(cur, len(cur)-n) {
				s.terminateLocked(r, "scale-down")
			}
		}
		return wake
	}
	// Rolling update, as the Deployment controller's rolloutRolling.
	surge, unavailable := s.rollingBounds(n)
	for len(cur)+len(old) < n+surge && len(cur) < n {
		cur = append(cur, s.createLocked())
	}
	if len(cur) > n { // scaled down during the rollout
		for _, r := range pickForDeletion(cur, len(cur)-n) {
			s.terminateLocked(r, "scale-down")
			cur = slices.DeleteFunc(cur, func(x *replica) bool { return x == r })
		}
	}
	readyCount := func(rs []*replica) int {
		c := 0
		for _, r := range rs {
			if r.ready {
				c++
			}
		}
		return c
	}
	minAvailable := n - unavailable
	// Old replicas that are not ready go first, then ready ones while
	// enough replicas stay available.
	available := readyCount(cur) + readyCount(old)
	newUnavailable := len(cur) - readyCount(cur)
	maxScaledDown := len(cur) + len(old) - minAvailable - newUnavailable
	for _, r := range slices.Clone(old) {
		if maxScaledDown <= 0 {
			break
		}
		if !r.ready {
			s.terminateLocked(r, "rolling update")
			old = slices.DeleteFunc(old, func(x *replica) bool { return x == r })
			maxScaledDown--
		}
	}
	canRemove := available - minAvailable
	for _, r := range pickForDeletion(old, len(old)) {
		if canRemove <= 0 {
			break
		}
		if r.ready {
			s.terminateLocked(r, "rolling update")
			canRemove--
		}
	}
	return wake
}

// rollingBounds resolves maxSurge (rounded up) and maxUnavailable
// (rounded down) against n, as the Deployment controller does; both zero
// means maxUnavailable 1. Defaults are 25 % each.
func (s *Service) rollingBounds(n int) (surge, unavailable int) {
	ms, mu := intstr.FromString("25%"), intstr.FromString("25%")
	if st := s.spec.Strategy; st != nil {
		if st.MaxSurge != "" {
			ms = intstr.Parse(st.MaxSurge)
		}
		if st.MaxUnavailable != "" {
			mu = intstr.Parse(st.MaxUnavailable)
		}
	}
	surge, _ = intstr.GetScaledValueFromIntOrPercent(&ms, n, true)
	unavailable, _ = intstr.GetScaledValueFromIntOrPercent(&mu, n, false)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// pickForDeletion orders replicas as the ReplicaSet controller ranks pods
// for deletion (not ready before ready, restarted more before fewer,
// newer before older) and returns the first k.
func pickForDeletion(rs []*replica, k int) []*replica {
	out := slices.Clone(rs)
	slices.SortStableFunc(out, func(a, b *replica) int {
		if a.ready != b.ready {
			if !a.ready {
				return -1
			}
			return 1
		}
		if a.restarts != b.restarts {
			return int(b.restarts - a.restarts)
		}
		return b.index - a.index
	})
	return out[:min(k, len(out))]
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port for a replica: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// createLocked adds a replica of the current generation and starts it.
func (s *Service) createLocked() *replica {
	idx := s.nextIndex
	s.nextIndex++
	port, err := freePort()
	if err != nil {
		s.eventLocked("Warning", "FailedCreate", err.Error())
	}
	r := s.addReplicaLocked(idx, s.generation, port)
	s.startLocked(r)
	return r
}

// addReplicaLocked records a replica (not yet running) and registers it,
// not ready, with the load balancer.
func (s *Service) addReplicaLocked(idx int, generation int64, port int) *replica {
	r := &replica{index: idx, name: fmt.Sprintf("%s-%d", s.cfg.Name, idx), generation: generation,
		phase: PhasePending, removed: make(chan struct{}), backoff: s.cfg.BackOff, port: port}
	r.grace = s.spec.KillGracePeriod()
	r.spec = s.replicaSpecLocked(r)
	s.replicas = append(s.replicas, r)
	u, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(port))
	s.lb.AddEndpoint(r.name, u, NewProbeSpec(s.spec.ReadinessProbe, port))
	return r
}

// replicaSpecLocked builds argv and env: PORT and HOST first, then
// cfg.Env, then spec.env, each value expanded against the earlier ones;
// command and args expanded against all of them. HOST=127.0.0.1 tells a
// server that honours it to listen on loopback only, so a replica is
// reached through the load balancer, not from the network.
func (s *Service) replicaSpecLocked(r *replica) ReplicaSpec {
	vars := map[string]string{}
	var env []string
	add := func(k, v string) {
		v = expansion.Expand(v, expansion.Map(vars))
		vars[k] = v
		env = append(env, k+"="+v)
	}
	add("PORT", strconv.Itoa(r.port))
	add("HOST", "127.0.0.1")
	for _, kv := range s.cfg.Env {
		k, v, _ := cutEnv(kv)
		add(k, v)
	}
	for _, e := range s.spec.Env {
		add(e.Name, e.Value)
	}
	lookup := func(n string) (string, bool) { x, ok := vars[n]; return x, ok }
	var argv []string
	for _, a := range append(slices.Clone(s.spec.Command), s.spec.Args...) {
		argv = append(argv, expansion.Expand(a, lookup))
	}
	rs := ReplicaSpec{Service: s.cfg.Name, Name: r.name, Index: r.index, Generation: r.generation,
		Argv: argv, Env: env, Dir: s.cfg.Dir, Port: r.port, Template: s.spec.PodTemplate}
	rs.Vars = [][2]string{{"PORT", strconv.Itoa(r.port)}, {"HOST", "127.0.0.1"}}
	for _, kv := range s.cfg.Env {
		k, v, _ := cutEnv(kv)
		rs.Vars = append(rs.Vars, [2]string{k, v})
	}
	if s.cfg.LogDir != "" {
		rs.LogPath = filepath.Join(s.cfg.LogDir, r.name, "output.log")
	}
	return rs
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// LogPath returns the log file of the replica with the given index, or ""
// when the service keeps no logs or has no such replica.
func (s *Service) LogPath(index int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.replicas {
		if r.index == index {
			return r.spec.LogPath
		}
	}
	return ""
}

// startLocked starts r's process and its probes and exit watcher.
func (s *Service) startLocked(r *replica) {
	proc, err := s.runner.Start(s.ctx, r.spec)
	if errors.Is(err, ErrUnschedulable) {
		if r.lastReason != ReasonUnschedulable {
			s.eventLocked("Warning", "FailedScheduling", fmt.Sprintf("replica %s: %v", r.name, err))
		}
		r.lastReason, r.phase = ReasonUnschedulable, PhasePending
		r.restartAt = time.Now().Add(UnschedulableRecheck)
		s.poke()
		return
	}
	if err != nil {
		r.lastReason = backend.ReasonStartError
		s.eventLocked("Warning", "Failed", fmt.Sprintf("replica %s: %v", r.name, err))
		s.scheduleRestartLocked(r, time.Now())
		return
	}
	s.attachLocked(r, proc, time.Now(), "Started", "started", false)
}

// attachLocked makes proc r's running process: probes start (readiness
// as given until they have a result: false for a new process) and its
// exit is watched.
func (s *Service) attachLocked(r *replica, proc Proc, started time.Time, reason, verb string, ready bool) {
	if r.podStart.IsZero() {
		r.podStart = started
	}
	r.proc, r.startTime, r.phase, r.killReason = proc, started, PhaseRunning, ""
	r.markReady(ready, started)
	if r.lastReason == ReasonUnschedulable {
		r.lastReason = ""
	}
	s.lb.SetReady(r.name, ready)
	s.cpu.Forget(r.name)
	s.eventLocked("Normal", reason, fmt.Sprintf("%s replica %s (pid %d, port %d)", verb, r.name, proc.Pid(), r.port))
	pctx, cancel := context.WithCancel(s.ctx)
	r.stopProbes = cancel
	pr := &Prober{
		Startup:   NewProbeSpec(s.spec.StartupProbe, r.port),
		Readiness: NewProbeSpec(s.spec.ReadinessProbe, r.port),
		Liveness:  NewProbeSpec(s.spec.LivenessProbe, r.port),
		Hooks: ProbeHooks{
			Ready: func(ready bool) { s.setReady(r, proc, ready) },
			Kill:  func(reason, msg string) { s.killForProbe(r, proc, reason, msg) },
			Event: func(typ, reason, msg string) {
				s.mu.Lock()
				defer s.mu.Unlock()
				if r.proc == proc {
					s.eventLocked(typ, reason, r.name+": "+msg)
				}
			},
		},
	}
	go pr.Run(pctx, r.startTime)
	go s.watchExit(r, proc)
}

func (s *Service) setReady(r *replica, proc Proc, ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.proc != proc || r.terminating {
		return
	}
	r.markReady(ready, time.Now())
	s.lb.SetReady(r.name, ready)
	s.notifyLocked()
	s.poke() // readiness moves rolling updates along
}

// killForProbe kills a replica whose startup or liveness probe failed; it
// is restarted like any exited replica.
func (s *Service) killForProbe(r *replica, proc Proc, reason, msg string) {
	s.mu.Lock()
	if r.proc != proc || r.terminating {
		s.mu.Unlock()
		return
	}
	r.killReason = reason
	r.markReady(false, time.Now())
	s.lb.SetReady(r.name, false)
	s.eventLocked("Normal", "Killing", r.name+": "+msg)
	grace := r.grace
	s.mu.Unlock()
	go stopProc(proc, grace)
}

// stopProc sends SIGTERM to the process group, waits up to grace for the
// process to exit, then SIGKILLs the group (also after a clean exit, so no
// child of the replica outlives it).
func stopProc(proc Proc, grace time.Duration) {
	proc.Signal(syscall.SIGTERM) //nolint:errcheck
	select {
	case <-proc.Wait():
	case <-time.After(grace):
	}
	proc.Signal(syscall.SIGKILL) //nolint:errcheck
}

func (s *Service) watchExit(r *replica, proc Proc) {
	ex, ok := <-proc.Wait()
	if !ok {
		ex = Exit{Code: 128, Reason: "Error"}
	}
	proc.Signal(syscall.SIGKILL) //nolint:errcheck // reap the rest of the group
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.proc != proc || s.detached {
		return
	}
	r.stopProbes()
	r.proc = nil
	r.markReady(false, time.Now())
	s.lb.SetReady(r.name, false)
	s.cpu.Forget(r.name)
	if r.terminating {
		s.notifyLocked()
		return
	}
	r.restarts++
	r.lastReason = ex.Reason
	r.logTail = TailLines(r.spec.LogPath, 20, 2048)
	if r.killReason != "" {
		r.lastReason = r.killReason
	}
	s.eventLocked("Warning", "BackOff", fmt.Sprintf("replica %s exited with code %d (%s); restarting", r.name, ex.Code, r.lastReason))
	s.scheduleRestartLocked(r, time.Now())
	s.poke()
}

// markReady sets r's Ready condition; its transition time moves only when
// the status changes (or on the first report), as the kubelet's status
// manager keeps lastTransitionTime.
func (r *replica) markReady(ready bool, at time.Time) {
	if r.ready != ready || r.readySince.IsZero() {
		r.readySince = at
	}
	r.ready = ready
}

func (s *Service) scheduleRestartLocked(r *replica, exitedAt time.Time) {
	wait := r.backoff.Next(exitedAt)
	r.restartAt = exitedAt.Add(wait)
	r.phase = PhaseBackOff
	if wait == 0 {
		r.phase = PhasePending
	}
	s.poke()
}

// terminateLocked drains and stops a replica in the background: stop
// routing to it, wait for its in-flight requests, SIGTERM, the grace
// period, SIGKILL of its process group; then it is forgotten.
func (s *Service) terminateLocked(r *replica, why string) {
	if r.terminating {
		return
	}
	r.terminating, r.phase, r.ready = true, PhaseTerminating, false
	proc := r.proc
	s.eventLocked("Normal", "Killing", fmt.Sprintf("stopping replica %s (%s)", r.name, why))
	s.terminators.Add(1)
	go func() {
		defer s.terminators.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.grace)
		s.lb.Drain(ctx, r.name) //nolint:errcheck // the grace period bounds the drain
		cancel()
		if proc != nil {
			stopProc(proc, r.grace)
			<-proc.Wait()
		}
		s.lb.Remove(r.name)
		if f, ok := s.runner.(Forgetter); ok {
			f.Forget(r.spec)
		}
		s.mu.Lock()
		if r.stopProbes != nil {
			r.stopProbes()
		}
		s.replicas = slices.DeleteFunc(s.replicas, func(x *replica) bool { return x == r })
		close(r.removed)
		s.notifyLocked()
		s.mu.Unlock()
		s.poke()
	}()
}

// Delete stops the autoscaler, drains and stops every replica (each
// within its grace period) and closes the load balancer. It returns when
// every replica process has exited or ctx ends.
func (s *Service) Delete(ctx context.Context) error {
	s.mu.Lock()
	if s.deleted {
		s.mu.Unlock()
		return nil
	}
	s.deleted = true
	for _, r := range slices.Clone(s.replicas) {
		s.terminateLocked(r, "service deleted")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.terminators.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("delete service %q: replicas still stopping: %w", s.cfg.Name, ctx.Err())
	}
	s.cancel()
	s.loops.Wait()
	s.lb.Close()
	return err
}

// Detach stops the controller — its reconcile and autoscaling loops, the
// probes and the load balancer — but leaves the replica processes running,
// and returns them for a successor's Config.Adopt (a server restart, like
// the kubelet's, does not restart workloads). Replicas that are draining
// finish stopping.
func (s *Service) Detach() []AdoptedReplica {
	s.mu.Lock()
	if s.deleted {
		s.mu.Unlock()
		return nil
	}
	s.deleted, s.detached = true, true
	var out []AdoptedReplica
	for _, r := range s.replicas {
		if r.stopProbes != nil {
			r.stopProbes()
		}
		if r.proc != nil && !r.terminating {
			out = append(out, AdoptedReplica{Index: r.index, Generation: r.generation, Port: r.port, Proc: r.proc, StartTime: r.startTime})
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.loops.Wait()
	s.lb.Detach()
	return out
}

// Wait blocks until cond holds for the service's status or ctx ends.
func (s *Service) Wait(ctx context.Context, cond func(backend.Service) bool) (backend.Service, error) {
	for {
		s.mu.Lock()
		st := s.statusLocked()
		ch := s.changed
		s.mu.Unlock()
		if cond(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// RolledOut reports whether every replica runs the current generation,
// there are as many as desired and all are ready.
func RolledOut(st backend.Service) bool {
	if int32(len(st.Replicas)) != st.DesiredReplicas || st.ReadyReplicas != st.DesiredReplicas {
		return false
	}
	for _, r := range st.Replicas {
		if r.Generation != st.Generation {
			return false
		}
	}
	return true
}

// Status returns the service's observed state.
func (s *Service) Status() backend.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Service) statusLocked() backend.Service {
	st := backend.Service{Name: s.cfg.Name, Spec: s.spec, URL: s.lb.URL(), DesiredReplicas: s.desired,
		Generation: s.generation, CreationTime: s.created, Metric: s.metric, Events: slices.Clone(s.events)}
	if s.manual && s.autoscaler != nil {
		st.Metric = "autoscaling off (scaled by hand until the next serve -f)"
	}
	for _, r := range s.replicas {
		rep := backend.Replica{Index: r.index, Name: r.name, Generation: r.generation, Phase: r.phase, Ready: r.ready,
			Port: r.port, Restarts: r.restarts, LastReason: r.lastReason, LogTail: slices.Clone(r.logTail)}
		if r.proc != nil {
			t := r.startTime
			rep.StartTime = &t
		}
		rep.InFlight = s.lb.InFlight(r.name)
		if r.ready {
			st.ReadyReplicas++
		}
		st.Replicas = append(st.Replicas, rep)
	}
	now := time.Now()
	_, unavailable := s.rollingBounds(int(s.desired))
	avail := backend.Condition{Type: "Available", Status: "True", Reason: "MinimumReplicasAvailable",
		Message: "Deployment has minimum availability.", LastTransitionTime: now}
	if int(st.ReadyReplicas) < int(s.desired)-unavailable || (s.desired > 0 && st.ReadyReplicas == 0) {
		avail.Status, avail.Reason, avail.Message = "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	}
	prog := backend.Condition{Type: "Progressing", Status: "True", Reason: "NewReplicaSetAvailable",
		Message: fmt.Sprintf("generation %d is rolled out", s.generation), LastTransitionTime: now}
	if !RolledOut(st) {
		prog.Reason, prog.Message = "ReplicaSetUpdated", fmt.Sprintf("generation %d is progressing", s.generation)
	}
	st.Conditions = s.transitionLocked(avail, prog)
	return st
}

// transitionLocked keeps each condition's lastTransitionTime from the
// previous status while its status and reason are unchanged, as the
// Deployment controller's SetDeploymentCondition does.
func (s *Service) transitionLocked(conds ...backend.Condition) []backend.Condition {
	for i, c := range conds {
		for _, old := range s.conditions {
			if old.Type == c.Type && old.Status == c.Status && old.Reason == c.Reason {
				conds[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	s.conditions = slices.Clone(conds)
	return conds
}

// autoscaleLoop runs the HPA sync every SyncPeriod and, for the
// concurrency metric, samples the load balancer's in-flight counts 20
// times per period.
func (s *Service) autoscaleLoop() {
	defer s.loops.Done()
	sync := time.NewTicker(s.cfg.SyncPeriod)
	defer sync.Stop()
	sample := time.NewTicker(max(s.cfg.SyncPeriod/20, 10*time.Millisecond))
	defer sample.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-sample.C:
			s.lb.SampleInFlight()
			s.primeCPU()
		case <-sync.C:
			s.autoscale()
		}
	}
}

// primeCPU takes a first CPU reading of replicas that have none, so the
// first sync after a replica starts already has a rate (metrics-server
// likewise reports a pod's CPU once it has a window of samples).
func (s *Service) primeCPU() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.autoscaler == nil || s.autoscaler.Kind != MetricCPU {
		return
	}
	now := time.Now()
	for _, r := range s.replicas {
		if r.proc != nil && !r.terminating && !s.cpu.Has(r.name) {
			s.cpu.Sample(r.name, r.proc.Pid(), now)
		}
	}
}

// autoscale is one HPA sync over the current replicas.
func (s *Service) autoscale() {
	s.mu.Lock()
	defer s.mu.Unlock()
	as := s.autoscaler
	if as == nil || s.manual || s.deleted {
		return
	}
	now := time.Now()
	var request int64
	if c := s.spec.Resources.CPU; c != nil {
		request = c.MilliValue()
	}
	var metrics []ReplicaMetric
	for _, r := range s.replicas {
		if r.terminating {
			continue // the HPA ignores pods being deleted
		}
		m := ReplicaMetric{Name: r.name, Pending: r.podStart.IsZero(), StartTime: r.podStart,
			Ready: r.ready, ReadyTransition: r.readySince, RequestMilli: request}
		switch as.Kind {
		case MetricCPU:
			if r.proc != nil {
				since, had := s.cpu.Since(r.name)
				m.Value, m.HasValue = s.cpu.Sample(r.name, r.proc.Pid(), now)
				if had {
					m.Timestamp, m.Window = now, now.Sub(since)
				}
			}
		case MetricConcurrency:
			m.Value, m.HasValue = s.lb.TakeConcurrency(r.name)
		}
		metrics = append(metrics, m)
	}
	d, err := as.Decide(s.desired, metrics)
	if err != nil {
		if !errors.Is(err, ErrNoMetrics) {
			s.eventLocked("Warning", "FailedGetResourceMetric", err.Error())
		}
		return
	}
	if d.Metric != "" {
		s.metric = d.Metric
	}
	if d.Rescale() {
		s.desired = d.Desired
		s.eventLocked("Normal", "SuccessfulRescale", d.Message)
		s.poke()
	}
	s.notifyLocked()
}
