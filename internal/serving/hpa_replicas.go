package serving

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// The replica calculator's defaults in kube-controller-manager (Kubernetes
// v1.37.2, pkg/controller/podautoscaler/config/v1alpha1/defaults.go).
const (
	// DefaultTolerance is --horizontal-pod-autoscaler-tolerance (0.1): a
	// usage ratio within 10 % of 1.0 changes nothing, in both directions
	// unless behavior.scaleUp/scaleDown.tolerance says otherwise.
	DefaultTolerance = 0.1
	// DefaultCPUInitializationPeriod is
	// --horizontal-pod-autoscaler-cpu-initialization-period (5 min): for
	// this long after a pod starts, its CPU sample counts only if the pod
	// is ready and the sample was taken wholly after it became ready.
	DefaultCPUInitializationPeriod = 5 * time.Minute
	// DefaultInitialReadinessDelay is
	// --horizontal-pod-autoscaler-initial-readiness-delay (30 s): after the
	// initialization period, an unready pod whose Ready condition last
	// changed within this long of its start has never been ready, and its
	// CPU sample is ignored; one that became unready later still counts.
	DefaultInitialReadinessDelay = 30 * time.Second
)

// MetricKind names the autoscaling metric.
type MetricKind string

// Metric kinds.
const (
	// MetricCPU is autoscaling/v2 Resource cpu with target
	// averageUtilization: usage in millicores against the CPU request
	// (GetResourceReplicas).
	MetricCPU MetricKind = "cpu"
	// MetricConcurrency is a Pods metric with target averageValue: the
	// average number of in-flight requests per replica seen by the load
	// balancer (GetMetricReplicas → calcPlainMetricReplicas).
	MetricConcurrency MetricKind = "concurrency"
)

// Tolerances is replica_calculator.go's Tolerances: the count is kept
// while 1 − ScaleDown ≤ usage ratio ≤ 1 + ScaleUp. Both are fractions
// (0.1 = 10 %).
type Tolerances struct {
	ScaleDown, ScaleUp float64
}

// isWithin is Tolerances.isWithin.
func (t Tolerances) isWithin(ratio float64) bool {
	return 1.0-t.ScaleDown <= ratio && ratio <= 1.0+t.ScaleUp
}

// ReplicaMetric is one replica as the HPA controller's replica calculator
// sees a pod (groupPods): its phase, start time, Ready condition and
// metric sample, if any. The caller leaves out replicas being deleted (the
// calculator ignores pods with a deletionTimestamp).
type ReplicaMetric struct {
	Name string
	// Pending is true while the pod has not started (core/v1 PodPending):
	// such a pod is unready for every metric.
	Pending bool
	// StartTime is the pod's status.startTime, when it first started; it
	// does not move when a container restarts. Zero means unset, which
	// makes a CPU sample unready.
	StartTime time.Time
	// Ready is the status of the pod's Ready condition.
	Ready bool
	// ReadyTransition is the Ready condition's lastTransitionTime. Zero
	// means the pod has no Ready condition, which makes a CPU sample
	// unready.
	ReadyTransition time.Time
	// HasValue is false when no sample exists for the replica (a "missing"
	// pod in replica_calculator.go).
	HasValue bool
	// Value is CPU usage in millicores (MetricCPU) or the average number of
	// in-flight requests (MetricConcurrency).
	Value float64
	// Timestamp and Window say when the sample was taken and the span it
	// averages (metrics.k8s.io PodMetrics timestamp and window): it covers
	// [Timestamp − Window, Timestamp]. Used for CPU within the
	// initialization period.
	Timestamp time.Time
	Window    time.Duration
	// RequestMilli is the replica's CPU request in millicores (MetricCPU only).
	RequestMilli int64
}

// Proposal is the replica calculator's answer before normalisation.
type Proposal struct {
	Replicas int32
	// Utilization is the CPU utilisation in percent of the request
	// (MetricCPU), or the average in-flight requests in milli-units
	// (MetricConcurrency), over ready replicas with metrics.
	Utilization int64
}

// ErrNoMetrics is returned when no ready replica has a metric yet; the
// controller then keeps the current replica count, as the HPA does.
var ErrNoMetrics = errors.New("no metrics for any ready replica yet; wait one sync period after replicas become ready")

// podGroups is groupPods' result: names of replicas whose sample counts,
// is set aside as unready, or is missing.
type podGroups struct {
	ready, unready, missing []string
}

// groupPods is replica_calculator.go's groupPods at time now: pending pods
// are unready; pods without a sample are missing; for CPU, a pod without
// a start time or Ready condition is unready, and so is one within the
// CPU initialization period that is not ready or whose sample began before
// it became ready, and one past that period that is not ready and has
// never been ready (its Ready condition last changed within the initial
// readiness delay of its start). A pod that was ready and became unready
// later keeps its sample.
func groupPods(s HPASpec, pods []ReplicaMetric, now time.Time) podGroups {
	var g podGroups
	for _, p := range pods {
		if p.Pending {
			g.unready = append(g.unready, p.Name)
			continue
		}
		if !p.HasValue {
			g.missing = append(g.missing, p.Name)
			continue
		}
		if s.Kind == MetricCPU {
			var unready bool
			switch {
			case p.ReadyTransition.IsZero() || p.StartTime.IsZero():
				unready = true
			case p.StartTime.Add(s.CPUInitializationPeriod).After(now):
				unready = !p.Ready || p.Timestamp.Before(p.ReadyTransition.Add(p.Window))
			default:
				unready = !p.Ready && p.StartTime.Add(s.InitialReadinessDelay).After(p.ReadyTransition)
			}
			if unready {
				g.unready = append(g.unready, p.Name)
				continue
			}
		}
		g.ready = append(g.ready, p.Name)
	}
	return g
}

// CalcReplicas is the replica calculator at time now:
// replica_calculator.go's GetResourceReplicas for MetricCPU (target =
// averageUtilization in percent) and calcPlainMetricReplicas for
// MetricConcurrency (target = averageValue in milli-requests).
//
// Replicas are grouped as groupPods does. With every replica ready and
// sampled, desired = ceil(ready × usage ratio), or current while the ratio
// is within the tolerances. Otherwise missing replicas count, on a
// scale-down, as max(100 %, target) of their request (CPU) or exactly the
// target (concurrency), and as 0 on a scale-up; on a scale-up unready
// replicas count as 0; if the ratio recomputed with them is within the
// tolerances or turns the direction round, or the new count would, the
// current count is kept. ErrNoMetrics when no replica's sample counts.
func CalcReplicas(s HPASpec, current int32, pods []ReplicaMetric, now time.Time) (Proposal, error) {
	if s.Target <= 0 {
		return Proposal{}, fmt.Errorf("autoscaling target must be positive, got %d", s.Target)
	}
	byName := make(map[string]ReplicaMetric, len(pods))
	for _, p := range pods {
		byName[p.Name] = p
	}
	g := groupPods(s, pods, now)
	// values holds each counted pod's metric: millicores, or milli-requests.
	values := make(map[string]int64, len(pods))
	for _, name := range g.ready {
		v := byName[name].Value
		if s.Kind == MetricConcurrency {
			v *= 1000
		}
		values[name] = int64(math.Round(v))
	}
	if len(values) == 0 {
		return Proposal{}, ErrNoMetrics
	}
	ratio := func() (float64, int64, error) {
		if s.Kind == MetricConcurrency {
			// metricsclient.GetMetricUsageRatio
			var total int64
			for _, v := range values {
				total += v
			}
			usage := total / int64(len(values))
			return float64(usage) / float64(s.Target), usage, nil
		}
		// metricsclient.GetResourceUtilizationRatio
		var total, req int64
		for name, v := range values {
			total += v
			req += byName[name].RequestMilli
		}
		if req == 0 {
			return 0, 0, errors.New("replicas have no CPU request; set spec.resources.cpu (e.g. \"500m\") for CPU autoscaling")
		}
		util := total * 100 / req
		return float64(util) / float64(s.Target), util, nil
	}
	usageRatio, util, err := ratio()
	if err != nil {
		return Proposal{}, err
	}
	keep := Proposal{Replicas: current, Utilization: util}
	scaleUpWithUnready := len(g.unready) > 0 && usageRatio > 1.0
	if !scaleUpWithUnready && len(g.missing) == 0 {
		if s.Tolerances.isWithin(usageRatio) {
			return keep, nil
		}
		return Proposal{Replicas: int32(math.Ceil(usageRatio * float64(len(g.ready)))), Utilization: util}, nil
	}
	for _, name := range g.missing {
		switch {
		case usageRatio < 1.0 && s.Kind == MetricCPU:
			values[name] = byName[name].RequestMilli * max(100, s.Target) / 100
		case usageRatio < 1.0:
			values[name] = s.Target
		case usageRatio > 1.0:
			values[name] = 0
		}
	}
	if scaleUpWithUnready {
		for _, name := range g.unready {
			values[name] = 0
		}
	}
	newRatio, _, err := ratio()
	if err != nil {
		return Proposal{}, err
	}
	if s.Tolerances.isWithin(newRatio) || (usageRatio < 1.0 && newRatio > 1.0) || (usageRatio > 1.0 && newRatio < 1.0) {
		return keep, nil
	}
	n := int32(math.Ceil(newRatio * float64(len(values))))
	if (newRatio < 1.0 && n > current) || (newRatio > 1.0 && n < current) {
		return keep, nil
	}
	return Proposal{Replicas: n, Utilization: util}, nil
}
