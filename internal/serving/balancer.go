package serving

import (
	"context"
	"net/url"
	"slices"
)

// EventSource is a Balancer with events of its own to report, such as a
// RemoteBalancer's process outages: NewService gives it the service's
// event recorder, so they show in `petrel describe service`. record is
// called without the balancer's locks held.
type EventSource interface {
	SetEventRecorder(record func(typ, reason, msg string))
}

// Balancer is what a Service controller drives to route its traffic: the
// set of endpoints (replicas), each ready or not, draining on scale-down.
// It plays the part of a Kubernetes Service's EndpointSlices as kube-proxy
// consumes them. Two implementations exist: the in-process LoadBalancer
// (tests, embedded use) and RemoteBalancer, which drives a load-balancer
// process (`petrel lb DIR`) that outlives the controller, so a service's
// URL keeps answering while the control plane restarts — as a node's
// kube-proxy rules keep routing while the API server is down.
type Balancer interface {
	// URL is the service's base URL, e.g. http://127.0.0.1:40123.
	URL() string
	// AddEndpoint registers a replica, not ready, unless one of that name
	// is already known (then it is kept as it is). probe is the replica's
	// readiness probe (nil: none), which a RemoteBalancer's process runs
	// itself while no controller talks to it.
	AddEndpoint(name string, u *url.URL, probe *ProbeSpec)
	// Remove forgets an endpoint; requests in flight to it finish.
	Remove(name string)
	// Retain removes every endpoint not named in keep (after an adoption,
	// replicas that died while no controller ran).
	Retain(keep []string)
	// SetReady marks an endpoint ready or not; unknown names are ignored.
	SetReady(name string, ready bool)
	// IsReady reports whether the named endpoint is marked ready (an
	// adopted load balancer's view, before the controller's probes have
	// a result).
	IsReady(name string) bool
	// Drain stops new requests to the endpoint and waits until it has
	// none in flight or ctx ends.
	Drain(ctx context.Context, name string) error
	// InFlight is the endpoint's number of requests in flight (for a
	// RemoteBalancer, as of its last report, at most a second old).
	InFlight(name string) int64
	// SampleInFlight records in-flight counts for the concurrency metric;
	// the controller calls it 20 times per HPA sync period.
	SampleInFlight()
	// TakeConcurrency returns the endpoint's average sampled in-flight
	// count since the last call (false: never sampled ready meanwhile).
	TakeConcurrency(name string) (float64, bool)
	// Close stops serving for good (the service is deleted).
	Close() error
	// Detach lets go of the load balancer without stopping it, for a
	// successor controller (a server restart) to adopt. The in-process
	// LoadBalancer cannot outlive its process and closes.
	Detach()
}

// AddEndpoint implements Balancer; the in-process load balancer leaves
// probing to its controller and ignores probe.
func (lb *LoadBalancer) AddEndpoint(name string, u *url.URL, _ *ProbeSpec) { lb.Add(name, u) }

// Retain implements Balancer.
func (lb *LoadBalancer) Retain(keep []string) {
	for _, e := range lb.Endpoints() {
		if !slices.Contains(keep, e.Name) {
			lb.Remove(e.Name)
		}
	}
}

// IsReady implements Balancer.
func (lb *LoadBalancer) IsReady(name string) bool {
	e := lb.Get(name)
	return e != nil && e.ready.Load()
}

// InFlight implements Balancer (0 for an unknown endpoint).
func (lb *LoadBalancer) InFlight(name string) int64 {
	if e := lb.Get(name); e != nil {
		return e.InFlight()
	}
	return 0
}

// Detach implements Balancer: an in-process load balancer closes.
func (lb *LoadBalancer) Detach() { lb.Close() } //nolint:errcheck

var _ Balancer = (*LoadBalancer)(nil)
