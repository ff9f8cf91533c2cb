package serving

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one replica as the load balancer sees it: an address and
// whether it may receive traffic (the Ready condition of an Endpoints
// address in Kubernetes).
type Endpoint struct {
	Name     string
	URL      *url.URL
	ready    atomic.Bool
	draining atomic.Bool
	inFlight atomic.Int64
	// idle is closed and replaced whenever inFlight drops to zero.
	mu   sync.Mutex
	idle chan struct{}
	// samples accumulate in-flight counts for the concurrency metric.
	sampleSum   atomic.Int64
	sampleCount atomic.Int64
	// idleConns are kept-alive connections to the replica (guarded by mu);
	// removed: the endpoint is gone and keeps none.
	idleConns []*replicaConn
	removed   bool
	// refusedAt is when a connection to the replica was last refused
	// (unix nanoseconds): it gets no request for refusedBackoff after,
	// whatever its readiness says (passive health checking, as Envoy's
	// outlier detection), so a dead replica no probe has caught yet does
	// not draw the traffic its empty in-flight count invites.
	refusedAt atomic.Int64
}

// refusedBackoff is how long an endpoint that refused a connection is
// passed over.
const refusedBackoff = time.Second

func (e *Endpoint) refusedRecently(now int64) bool {
	t := e.refusedAt.Load()
	return t != 0 && now-t < int64(refusedBackoff)
}

// InFlight returns the number of requests the load balancer has sent to
// the endpoint that have not finished.
func (e *Endpoint) InFlight() int64 { return e.inFlight.Load() }

// Ready reports whether the endpoint receives new requests.
func (e *Endpoint) Ready() bool { return e.ready.Load() && !e.draining.Load() }

func (e *Endpoint) done() {
	if e.inFlight.Add(-1) == 0 {
		e.mu.Lock()
		if e.idle != nil {
			close(e.idle)
			e.idle = nil
		}
		e.mu.Unlock()
	}
}

// LoadBalancer is a reverse proxy on a local address that sends each
// request to the ready endpoint with the fewest outstanding requests (ties
// broken round-robin). It keeps connections to endpoints alive; a request
// whose connection is refused goes to another endpoint (nothing of it
// reached the replica, so whatever its method) and the refusing endpoint
// is passed over for a second; no request that reached a replica is sent
// again, except one that met a kept-alive connection the replica had
// closed. It answers 503 with a JSON body when no endpoint is ready. It plays the part of a Kubernetes
// Service plus its Endpoints. Its data path is forward.go's HTTP/1.1
// forwarder.
type LoadBalancer struct {
	// Service names the service in error bodies.
	Service string

	endpoints atomic.Pointer[[]*Endpoint]
	writeMu   sync.Mutex // serialises copy-on-write updates of endpoints
	next      atomic.Uint64
	listener  net.Listener
	conns     sync.Map // client net.Conn → struct{}, closed by Close
	closed    atomic.Bool
	metrics   *lbMetrics
}

// NewLoadBalancer returns a load balancer with no endpoints.
func NewLoadBalancer(service string) *LoadBalancer {
	lb := &LoadBalancer{Service: service, metrics: newLBMetrics(service)}
	empty := []*Endpoint{}
	lb.endpoints.Store(&empty)
	return lb
}

// Listen binds addr (e.g. "127.0.0.1:0" for an assigned port) and serves
// until Close. It returns the bound address.
func (lb *LoadBalancer) Listen(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s for service %q: %w; choose another port", addr, lb.Service, err)
	}
	lb.listener = l
	live.Store(lb, struct{}{})
	go lb.accept(l)
	return l.Addr().String(), nil
}

func (lb *LoadBalancer) accept(l net.Listener) {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if lb.closed.Load() {
				return
			}
			// EMFILE and the like: back off as net/http's Server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go lb.serveConn(c)
	}
}

// URL returns the load balancer's base URL once Listen succeeded.
func (lb *LoadBalancer) URL() string {
	if lb.listener == nil {
		return ""
	}
	return "http://" + lb.listener.Addr().String()
}

// Close stops listening, ends open connections and idle keep-alives.
func (lb *LoadBalancer) Close() error {
	var err error
	live.Delete(lb)
	lb.closed.Store(true)
	if lb.listener != nil {
		err = lb.listener.Close()
	}
	lb.conns.Range(func(k, _ any) bool {
		k.(net.Conn).Close()
		return true
	})
	for _, e := range lb.Endpoints() {
		e.closeIdle(true)
	}
	return err
}

// Add registers an endpoint (not ready) and returns it; an existing
// endpoint of the same name is returned unchanged.
func (lb *LoadBalancer) Add(name string, u *url.URL) *Endpoint {
	lb.writeMu.Lock()
	defer lb.writeMu.Unlock()
	cur := *lb.endpoints.Load()
	for _, e := range cur {
		if e.Name == name {
			return e
		}
	}
	e := &Endpoint{Name: name, URL: u}
	next := append(slices.Clone(cur), e)
	lb.endpoints.Store(&next)
	return e
}

// Remove forgets an endpoint at once; requests in flight to it finish.
func (lb *LoadBalancer) Remove(name string) {
	lb.writeMu.Lock()
	defer lb.writeMu.Unlock()
	cur := *lb.endpoints.Load()
	next := slices.DeleteFunc(slices.Clone(cur), func(e *Endpoint) bool {
		if e.Name == name {
			e.closeIdle(true)
			return true
		}
		return false
	})
	lb.endpoints.Store(&next)
}

// SetReady marks an endpoint ready or not; unknown names are ignored.
func (lb *LoadBalancer) SetReady(name string, ready bool) {
	if e := lb.Get(name); e != nil {
		e.ready.Store(ready)
	}
}

// Get returns the named endpoint or nil.
func (lb *LoadBalancer) Get(name string) *Endpoint {
	for _, e := range *lb.endpoints.Load() {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Endpoints returns a snapshot of the endpoints.
func (lb *LoadBalancer) Endpoints() []*Endpoint { return slices.Clone(*lb.endpoints.Load()) }

// Drain stops routing new requests to the endpoint and waits until its
// in-flight count is zero or ctx ends (then it returns ctx's error). The
// endpoint stays registered; Remove it afterwards.
func (lb *LoadBalancer) Drain(ctx context.Context, name string) error {
	e := lb.Get(name)
	if e == nil {
		return nil
	}
	e.draining.Store(true)
	for {
		e.mu.Lock()
		if e.inFlight.Load() == 0 {
			e.mu.Unlock()
			return nil
		}
		if e.idle == nil {
			e.idle = make(chan struct{})
		}
		idle := e.idle
		e.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("drain %s: %d requests still in flight: %w", name, e.inFlight.Load(), ctx.Err())
		}
	}
}

// pick returns the ready endpoint with the fewest in-flight requests,
// skipping those in skip, starting the scan at a rotating offset so ties
// spread round-robin.
func (lb *LoadBalancer) pick(skip []*Endpoint) *Endpoint {
	eps := *lb.endpoints.Load()
	n := len(eps)
	if n == 0 {
		return nil
	}
	start := int(lb.next.Add(1) % uint64(n))
	now := time.Now().UnixNano()
	var best *Endpoint
	var bestLoad int64
	for i := 0; i < n; i++ {
		e := eps[(start+i)%n]
		if !e.Ready() || slices.Contains(skip, e) || e.refusedRecently(now) {
			continue
		}
		if l := e.inFlight.Load(); best == nil || l < bestLoad {
			best, bestLoad = e, l
		}
	}
	return best
}

// SampleInFlight records each ready endpoint's current in-flight count
// for the concurrency metric; call it at a steady rate.
func (lb *LoadBalancer) SampleInFlight() {
	for _, e := range *lb.endpoints.Load() {
		if e.Ready() {
			e.sampleSum.Add(e.inFlight.Load())
			e.sampleCount.Add(1)
		}
	}
}

// TakeConcurrency returns the average sampled in-flight count of the named
// endpoint since the last call, and false when it was never sampled ready
// in that time (a missing metric).
func (lb *LoadBalancer) TakeConcurrency(name string) (float64, bool) {
	e := lb.Get(name)
	if e == nil {
		return 0, false
	}
	n := e.sampleCount.Swap(0)
	sum := e.sampleSum.Swap(0)
	if n == 0 {
		return 0, false
	}
	return float64(sum) / float64(n), true
}
