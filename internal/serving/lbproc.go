package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Files in a load-balancer process's directory (the local engine uses
// services/NAME/lb/, mode 0700).
const (
	// LBConfigFile holds the LBConfig the controller wrote before it
	// started the process.
	LBConfigFile = "lb.json"
	// LBSocket is the process's control socket (mode 0600): the
	// controller pushes endpoints and reads in-flight counts through it.
	LBSocket = "lb.sock"
	// LBLogFile receives the process's standard error.
	LBLogFile = "lb.log"
)

// DefaultAwayAfter is how long a load-balancer process waits without a
// word from its controller (which reports every second) before it probes
// the replicas itself.
const DefaultAwayAfter = 3 * time.Second

// lbSamplePeriod is how often the process samples in-flight counts for
// the concurrency metric (the in-process controller samples 20 times per
// 15 s sync period; a process cannot know the period, so it samples at
// a fixed 50 ms).
const lbSamplePeriod = 50 * time.Millisecond

// LBConfig configures a load-balancer process.
type LBConfig struct {
	// Service names the service in error bodies and metrics.
	Service string `json:"service"`
	// Addr is the address to listen on, e.g. 127.0.0.1:40123.
	Addr string `json:"addr"`
	// AwayAfter overrides DefaultAwayAfter (nanoseconds in JSON).
	AwayAfter time.Duration `json:"awayAfter,omitempty"`
}

// lbEndpoint is one endpoint as the controller pushes it and the process
// reports it.
type lbEndpoint struct {
	Name     string     `json:"name"`
	URL      string     `json:"url"`
	Ready    bool       `json:"ready"`
	Draining bool       `json:"draining,omitempty"`
	Probe    *ProbeSpec `json:"probe,omitempty"`
	// InFlight is reported by the process, ignored when pushed.
	InFlight int64 `json:"inFlight,omitempty"`
}

// lbReport is the process's answer to GET /v1/state.
type lbReport struct {
	Addr      string       `json:"addr"`
	Pid       int          `json:"pid"`
	Endpoints []lbEndpoint `json:"endpoints"`
	// SelfProbing is true while no controller has spoken for AwayAfter
	// and the process probes the replicas itself.
	SelfProbing bool `json:"selfProbing"`
}

// lbProcess is the state of `petrel lb DIR`.
type lbProcess struct {
	cfg         LBConfig
	lb          *LoadBalancer
	lastContact atomic.Int64 // unix nanoseconds
	mu          sync.Mutex
	probes      map[string]*selfProbe
}

// selfProbe is the process's own readiness probing of one endpoint while
// the controller is away, with the kubelet's thresholds (see
// Prober.worker): the readiness flips after failureThreshold consecutive
// failures or successThreshold consecutive successes.
type selfProbe struct {
	spec    *ProbeSpec
	next    time.Time
	running bool
	last    bool
	run     int
}

// RunLB is the main of `petrel lb DIR`: it serves the service's port
// with a LoadBalancer, takes its endpoints from the controller over
// DIR/lb.sock, and probes the replicas itself while the controller is
// away. It runs until SIGTERM or the controller's shutdown request (a
// deleted service); the controller starting and exiting does not end it.
func RunLB(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, LBConfigFile))
	if err != nil {
		return fmt.Errorf("load balancer: %w", err)
	}
	var cfg LBConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("load balancer: %s: %w", LBConfigFile, err)
	}
	if cfg.AwayAfter <= 0 {
		cfg.AwayAfter = DefaultAwayAfter
	}
	// One thread runs the whole data path unless GOMAXPROCS says
	// otherwise: a forwarder's work is mostly system calls, and with more
	// threads the Go scheduler's wake-ups between them (futex) cost more
	// CPU per request than they add throughput on a machine whose other
	// cores run the replicas (bench/serving).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	p := &lbProcess{cfg: cfg, lb: NewLoadBalancer(cfg.Service), probes: map[string]*selfProbe{}}
	p.touch()
	if _, err := p.lb.Listen(cfg.Addr); err != nil {
		return err
	}
	sock := filepath.Join(dir, LBSocket)
	_ = os.Remove(sock) // a socket file a dead process left behind
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("load balancer control socket: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		return err
	}
	shutdown := make(chan struct{})
	var once sync.Once
	ctrl := &http.Server{Handler: p.controlMux(func() { once.Do(func() { close(shutdown) }) }), ReadHeaderTimeout: 10 * time.Second}
	go ctrl.Serve(l) //nolint:errcheck // ends with Close
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	go p.sampleLoop(ctx)
	go p.selfProbeLoop(ctx)
	orphan := time.NewTicker(2 * time.Second)
	defer orphan.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-shutdown:
			break wait
		case <-orphan.C:
			// Its directory removed (PETREL_HOME deleted with the service
			// still applied): nothing can adopt this process any more.
			if _, err := os.Stat(filepath.Join(dir, LBConfigFile)); errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(os.Stderr, "%s: %s removed; exiting\n", time.Now().Format(time.RFC3339), dir)
				break wait
			}
		}
	}
	// The port first: once the control socket stops answering, the
	// controller's Close returns and the port must be free.
	err = p.lb.Close()
	ctrl.Close()
	_ = os.Remove(sock)
	return err
}

func (p *lbProcess) touch() { p.lastContact.Store(time.Now().UnixNano()) }

func (p *lbProcess) away() bool {
	return time.Since(time.Unix(0, p.lastContact.Load())) > p.cfg.AwayAfter
}

func (p *lbProcess) controlMux(shutdown func()) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		var eps []lbEndpoint
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&eps); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := p.setEndpoints(eps); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, r *http.Request) {
		away := p.away()
		p.touch()
		json.NewEncoder(w).Encode(p.report(away)) //nolint:errcheck
	})
	mux.HandleFunc("POST /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		p.touch()
		if err := p.lb.Drain(r.Context(), r.URL.Query().Get("name")); err != nil {
			http.Error(w, err.Error(), http.StatusGatewayTimeout)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/concurrency", func(w http.ResponseWriter, r *http.Request) {
		p.touch()
		v, ok := p.lb.TakeConcurrency(r.URL.Query().Get("name"))
		json.NewEncoder(w).Encode(struct { //nolint:errcheck
			Value float64 `json:"value"`
			OK    bool    `json:"ok"`
		}{v, ok})
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(LBCollector())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		shutdown()
	})
	return mux
}

// setEndpoints makes the pushed set the load balancer's: new endpoints
// are added, missing ones removed, readiness and draining set.
func (p *lbProcess) setEndpoints(eps []lbEndpoint) error {
	keep := make([]string, 0, len(eps))
	for _, ep := range eps {
		u, err := url.Parse(ep.URL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("endpoint %q: bad URL %q", ep.Name, ep.URL)
		}
		e := p.lb.Add(ep.Name, u)
		e.ready.Store(ep.Ready)
		e.draining.Store(ep.Draining)
		keep = append(keep, ep.Name)
	}
	p.lb.Retain(keep)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes = map[string]*selfProbe{}
	for _, ep := range eps {
		if ep.Probe != nil {
			p.probes[ep.Name] = &selfProbe{spec: ep.Probe, last: ep.Ready, run: 0}
		}
	}
	p.touch() // the controller's view is fresh: self-probing starts over
	return nil
}

func (p *lbProcess) report(away bool) lbReport {
	rep := lbReport{Addr: p.lb.listener.Addr().String(), Pid: os.Getpid(), SelfProbing: away}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.lb.Endpoints() {
		ep := lbEndpoint{Name: e.Name, URL: e.URL.String(), Ready: e.ready.Load(), Draining: e.draining.Load(), InFlight: e.InFlight()}
		if sp := p.probes[e.Name]; sp != nil {
			ep.Probe = sp.spec
		}
		rep.Endpoints = append(rep.Endpoints, ep)
	}
	return rep
}

func (p *lbProcess) sampleLoop(ctx context.Context) {
	t := time.NewTicker(lbSamplePeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.lb.SampleInFlight()
		}
	}
}

// selfProbeLoop runs each endpoint's readiness probe at its period while
// the controller is away.
func (p *lbProcess) selfProbeLoop(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !p.away() {
			continue
		}
		now := time.Now()
		p.mu.Lock()
		for name, sp := range p.probes {
			if sp.running || now.Before(sp.next) {
				continue
			}
			sp.running, sp.next = true, now.Add(sp.spec.Period)
			go p.probeOnce(ctx, name, sp)
		}
		p.mu.Unlock()
	}
}

func (p *lbProcess) probeOnce(ctx context.Context, name string, sp *selfProbe) {
	ok, _ := ProbeHTTP(ctx, sp.spec.URL, sp.spec.Timeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	sp.running = false
	if p.probes[name] != sp || ctx.Err() != nil {
		return // the controller pushed a new set meanwhile
	}
	if sp.run > 0 && ok == sp.last {
		sp.run++
	} else {
		sp.last, sp.run = ok, 1
	}
	threshold := sp.spec.FailureThreshold
	if ok {
		threshold = sp.spec.SuccessThreshold
	}
	if e := p.lb.Get(name); e != nil && sp.run >= threshold && e.ready.Load() != ok {
		e.ready.Store(ok)
		fmt.Fprintf(os.Stderr, "%s: controller away; replica %s ready=%v by its readiness probe\n", time.Now().Format(time.RFC3339), name, ok)
	}
}

// errLBGone reports a load-balancer process that does not answer.
var errLBGone = errors.New("load balancer process does not answer")
