package serving

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LB metric names, following Prometheus conventions (base units,
// counters end in _total). The in-flight gauge is per replica, so a
// Prometheus Adapter rule can expose it as a Pods metric.
const (
	MetricLBRequests = "petrel_lb_requests_total"
	MetricLBDuration = "petrel_lb_request_duration_seconds"
	MetricLBInFlight = "petrel_lb_inflight_requests"
)

// lbDurationBuckets are the request-duration histogram's upper bounds in
// seconds: Prometheus' default buckets plus 25 s and 60 s for slow
// inference requests.
var lbDurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25, 60}

var inFlightDesc = prometheus.NewDesc(MetricLBInFlight,
	"Requests the service's load balancer has sent to a replica that have not finished.",
	[]string{"service", "replica"}, nil)

// lbMetrics are one load balancer's request counters and histogram.
type lbMetrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

func newLBMetrics(service string) *lbMetrics {
	labels := prometheus.Labels{"service": service}
	return &lbMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricLBRequests,
			Help: "Requests the service's load balancer answered, by HTTP status code.", ConstLabels: labels}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricLBDuration,
			Help: "Time from a request's arrival at the load balancer to the end of its response, in seconds.", ConstLabels: labels,
			Buckets: lbDurationBuckets}),
	}
}

// observe records one finished request. A request whose client went away
// before any response header was written (code 0) counts in neither.
func (m *lbMetrics) observe(code int, d time.Duration) {
	if code == 0 {
		return
	}
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	m.duration.Observe(d.Seconds())
}

// live holds the listening load balancers; LBCollector reports them.
var live sync.Map // *LoadBalancer → struct{}

// lbCollector reports every listening load balancer's metrics.
type lbCollector struct{}

// LBCollector returns a Prometheus collector of every load balancer of
// this process that is listening: petrel_lb_requests_total{service,code},
// petrel_lb_request_duration_seconds{service} and
// petrel_lb_inflight_requests{service,replica}. A load balancer's series
// go away when it closes (a counter restarts from zero when its service is
// started again, which rate() handles as a reset). It is unchecked: the
// set of series changes with the services.
func LBCollector() prometheus.Collector { return lbCollector{} }

func (lbCollector) Describe(chan<- *prometheus.Desc) {}

func (lbCollector) Collect(ch chan<- prometheus.Metric) {
	live.Range(func(k, _ any) bool {
		lb := k.(*LoadBalancer)
		lb.metrics.requests.Collect(ch)
		lb.metrics.duration.Collect(ch)
		for _, e := range lb.Endpoints() {
			ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(e.InFlight()), lb.Service, e.Name)
		}
		return true
	})
}
