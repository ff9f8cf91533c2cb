package ui

import (
	"context"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/serving"
)

// lbWindow is how many sample periods the request rate and latency
// quantiles are computed over.
const lbWindow = 5

// sample is one point of a service's charts. Pointers are null in JSON
// when the value is unknown (no autoscaling, no load balancer metrics).
type sample struct {
	// T is the sample's time in Unix seconds.
	T       float64 `json:"t"`
	Desired int32   `json:"desired"`
	Ready   int32   `json:"ready"`
	// Value and Target are the autoscaling metric (percent of the CPU
	// request, or in-flight requests per replica) as the autoscaler last
	// computed it.
	Value  *float64 `json:"value"`
	Target *float64 `json:"target"`
	// Rate is requests per second through the load balancer; P50 and P99
	// are latency quantiles in seconds, over the last lbWindow periods.
	Rate     *float64 `json:"rate"`
	P50      *float64 `json:"p50"`
	P99      *float64 `json:"p99"`
	InFlight *float64 `json:"inflight"`
}

// lbSnapshot is a service's load balancer counters at one time.
type lbSnapshot struct {
	t        time.Time
	requests float64
	bounds   []float64 // histogram upper bounds, seconds
	buckets  []float64 // cumulative counts per bound
	inFlight float64
}

type serviceHistory struct {
	metric  string // e.g. "cpu", "concurrency"
	samples []sample
	lb      []lbSnapshot // the last lbWindow+1 snapshots
}

// history keeps the recent samples of every service (at most max each).
type history struct {
	mu   sync.Mutex
	max  int
	svcs map[string]*serviceHistory
}

func newHistory(max int) *history { return &history{max: max, svcs: map[string]*serviceHistory{}} }

var metricRE = regexp.MustCompile(`^(\S+) ([0-9.]+)%? / ([0-9.]+)%?$`)

// parseMetric reads a backend.Service Metric such as "cpu 142% / 70%".
func parseMetric(s string) (name string, value, target float64, ok bool) {
	m := metricRE.FindStringSubmatch(s)
	if m == nil {
		return "", 0, 0, false
	}
	v, err1 := strconv.ParseFloat(m[2], 64)
	t, err2 := strconv.ParseFloat(m[3], 64)
	return m[1], v, t, err1 == nil && err2 == nil
}

// sample records every service's state once.
func (s *Server) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	svcs, err := s.src.ListServices(ctx)
	if err != nil {
		return
	}
	now := time.Now()
	var lbs map[string]lbSnapshot
	if len(svcs) > 0 {
		lbs = s.gatherLB(now)
	}
	h := s.history
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, svc := range svcs {
		seen[svc.Name] = true
		sh := h.svcs[svc.Name]
		if sh == nil {
			sh = &serviceHistory{}
			h.svcs[svc.Name] = sh
		}
		p := sample{T: float64(now.UnixMilli()) / 1000, Desired: svc.DesiredReplicas, Ready: svc.ReadyReplicas}
		if name, v, t, ok := parseMetric(svc.Metric); ok {
			sh.metric = name
			p.Value, p.Target = &v, &t
		} else if svc.Spec.Autoscaling != nil {
			tg := svc.Spec.Autoscaling.Target
			if tg.CPUUtilization != nil {
				t := float64(*tg.CPUUtilization)
				sh.metric, p.Target = "cpu", &t
			} else if tg.Concurrency != nil {
				t := float64(*tg.Concurrency)
				sh.metric, p.Target = "concurrency", &t
			}
		}
		if snap, ok := lbs[svc.Name]; ok {
			sh.lb = append(sh.lb, snap)
			if len(sh.lb) > lbWindow+1 {
				sh.lb = sh.lb[1:]
			}
			inflight := snap.inFlight
			p.InFlight = &inflight
			if old := sh.lb[0]; len(sh.lb) > 1 && snap.requests >= old.requests {
				dt := snap.t.Sub(old.t).Seconds()
				rate := (snap.requests - old.requests) / dt
				p.Rate = &rate
				if len(old.buckets) == len(snap.buckets) && snap.requests > old.requests {
					delta := make([]float64, len(snap.buckets))
					for i := range delta {
						delta[i] = snap.buckets[i] - old.buckets[i]
					}
					p50, p99 := quantile(0.5, snap.bounds, delta), quantile(0.99, snap.bounds, delta)
					p.P50, p.P99 = &p50, &p99
				}
			}
		}
		sh.samples = append(sh.samples, p)
		if len(sh.samples) > h.max {
			sh.samples = sh.samples[len(sh.samples)-h.max:]
		}
	}
	for name := range h.svcs {
		if !seen[name] {
			delete(h.svcs, name)
		}
	}
}

// quantile estimates the q-quantile from cumulative bucket counts as
// PromQL's histogram_quantile does: linear interpolation inside the bucket
// that holds the rank; a rank in the +Inf bucket gives the highest bound.
func quantile(q float64, bounds, cum []float64) float64 {
	if len(cum) == 0 {
		return math.NaN()
	}
	total := cum[len(cum)-1]
	rank := q * total
	lower, prev := 0.0, 0.0
	for i, c := range cum {
		if c >= rank {
			if math.IsInf(bounds[i], 1) {
				return lower
			}
			if c == prev {
				return bounds[i]
			}
			return lower + (bounds[i]-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = bounds[i], c
	}
	return lower
}

// gatherLB reads every service's load balancer metrics from the gatherer.
func (s *Server) gatherLB(now time.Time) map[string]lbSnapshot {
	if s.opts.Gatherer == nil {
		return nil
	}
	mfs, err := s.opts.Gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		return nil
	}
	out := map[string]lbSnapshot{}
	get := func(m *dto.Metric) (string, string) {
		var svc, rep string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "service":
				svc = l.GetValue()
			case "replica":
				rep = l.GetValue()
			}
		}
		return svc, rep
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case serving.MetricLBRequests:
			for _, m := range mf.GetMetric() {
				svc, _ := get(m)
				snap := out[svc]
				snap.t = now
				snap.requests += m.GetCounter().GetValue()
				out[svc] = snap
			}
		case serving.MetricLBDuration:
			for _, m := range mf.GetMetric() {
				svc, _ := get(m)
				snap := out[svc]
				snap.t = now
				snap.bounds, snap.buckets = nil, nil
				for _, b := range m.GetHistogram().GetBucket() {
					snap.bounds = append(snap.bounds, b.GetUpperBound())
					snap.buckets = append(snap.buckets, float64(b.GetCumulativeCount()))
				}
				snap.bounds = append(snap.bounds, math.Inf(1))
				snap.buckets = append(snap.buckets, float64(m.GetHistogram().GetSampleCount()))
				out[svc] = snap
			}
		case serving.MetricLBInFlight:
			for _, m := range mf.GetMetric() {
				svc, _ := get(m)
				snap := out[svc]
				snap.t = now
				snap.inFlight += m.GetGauge().GetValue()
				out[svc] = snap
			}
		}
	}
	return out
}

// historyView is the service charts' data (/api/services/NAME/history).
type historyView struct {
	// Metric names the autoscaling metric ("cpu", "concurrency"), "" without autoscaling.
	Metric  string   `json:"metric"`
	Samples []sample `json:"samples"`
	// Scalings are the service's scaling decisions (SuccessfulRescale
	// events), marked on the charts.
	Scalings []scaling `json:"scalings"`
}

type scaling struct {
	T       float64 `json:"t"`
	Message string  `json:"message"`
}

func (s *Server) serviceHistory(w http.ResponseWriter, r *http.Request) {
	svc, err := s.src.GetService(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	v := historyView{Samples: []sample{}, Scalings: scalings(svc)}
	s.history.mu.Lock()
	if sh := s.history.svcs[svc.Name]; sh != nil {
		v.Metric = sh.metric
		v.Samples = append(v.Samples, sh.samples...)
	}
	s.history.mu.Unlock()
	writeJSON(w, v)
}

func scalings(svc *backend.Service) []scaling {
	out := []scaling{}
	for _, e := range svc.Events {
		if e.Reason == "SuccessfulRescale" {
			out = append(out, scaling{T: float64(e.Time.UnixMilli()) / 1000, Message: e.Message})
		}
	}
	return out
}
