package serving

import (
	"errors"
	"fmt"
	"math"
	"time"

	"k8s.io/utils/clock"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// DefaultTolerance is the HPA controller's default
// --horizontal-pod-autoscaler-tolerance (0.1): a usage ratio within 10 % of
// 1.0 changes nothing.
const DefaultTolerance = 0.1

// DefaultSyncPeriod is the HPA controller's default
// --horizontal-pod-autoscaler-sync-period (15 s).
const DefaultSyncPeriod = 15 * time.Second

// Scaling policy types and select policies, as autoscaling/v2.
const (
	PodsScalingPolicy    = "Pods"
	PercentScalingPolicy = "Percent"
	SelectMax            = "Max"
	SelectMin            = "Min"
	SelectDisabled       = "Disabled"
)

// MetricKind names the autoscaling metric.
type MetricKind string

// Metric kinds.
const (
	// MetricCPU is autoscaling/v2 Resource cpu with target
	// averageUtilization: usage in millicores against the CPU request.
	MetricCPU MetricKind = "cpu"
	// MetricConcurrency is a Pods metric with target averageValue: the
	// average number of in-flight requests per replica seen by the load
	// balancer.
	MetricConcurrency MetricKind = "concurrency"
)

// ReplicaMetric is one replica's input to a scaling decision, as the HPA
// controller sees a pod: whether it is ready and its metric, if any.
type ReplicaMetric struct {
	Name  string
	Ready bool
	// HasValue is false when no sample exists for the replica yet (a
	// "missing" pod in replica_calculator.go).
	HasValue bool
	// Value is CPU usage in millicores (MetricCPU) or the average number of
	// in-flight requests (MetricConcurrency).
	Value float64
	// RequestMilli is the replica's CPU request in millicores (MetricCPU only).
	RequestMilli int64
}

// Proposal is the replica calculator's answer before behaviours apply.
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

// CalcReplicas is replica_calculator.go's GetResourceReplicas (MetricCPU,
// target = averageUtilization percent) and calcPlainMetricReplicas
// (MetricConcurrency, target = averageValue in milli-units): desired =
// ceil(ready × usageRatio) when every replica is ready with a metric and
// |1 − ratio| > tolerance. With missing metrics, they count as 100 % of
// target on a scale-down and 0 on a scale-up; with unready replicas (CPU
// only, as upstream groupPods) on a scale-up, they count as 0; if that
// reverses the direction or falls within tolerance, current is kept.
func CalcReplicas(kind MetricKind, current int32, target int64, metrics []ReplicaMetric, tolerance float64) (Proposal, error) {
	if target <= 0 {
		return Proposal{}, fmt.Errorf("autoscaling target must be positive, got %d", target)
	}
	type entry struct {
		value   int64 // millicores, or milli-requests
		request int64
	}
	values := map[string]entry{}
	var unready, missing []string
	readyCount := 0
	for _, m := range metrics {
		if !m.HasValue {
			missing = append(missing, m.Name)
			continue
		}
		if kind == MetricCPU && !m.Ready {
			unready = append(unready, m.Name)
			continue
		}
		v := int64(math.Round(m.Value))
		if kind == MetricConcurrency {
			v = int64(math.Round(m.Value * 1000))
		}
		values[m.Name] = entry{value: v, request: m.RequestMilli}
		readyCount++
	}
	requests := map[string]int64{}
	for _, m := range metrics {
		requests[m.Name] = m.RequestMilli
	}
	if len(values) == 0 {
		return Proposal{}, ErrNoMetrics
	}
	ratio := func() (float64, int64, error) {
		if kind == MetricConcurrency {
			var total int64
			for _, e := range values {
				total += e.value
			}
			avg := total / int64(len(values))
			return float64(avg) / float64(target), avg, nil
		}
		var total, req int64
		for _, e := range values {
			total += e.value
			req += e.request
		}
		if req == 0 {
			return 0, 0, errors.New("replicas have no CPU request; set spec.resources.cpu (e.g. \"500m\") for CPU autoscaling")
		}
		util := total * 100 / req
		return float64(util) / float64(target), util, nil
	}
	usageRatio, util, err := ratio()
	if err != nil {
		return Proposal{}, err
	}
	rebalanceUnready := len(unready) > 0 && usageRatio > 1.0
	if !rebalanceUnready && len(missing) == 0 {
		if math.Abs(1.0-usageRatio) <= tolerance {
			return Proposal{Replicas: current, Utilization: util}, nil
		}
		return Proposal{Replicas: int32(math.Ceil(usageRatio * float64(readyCount))), Utilization: util}, nil
	}
	if len(missing) > 0 {
		for _, name := range missing {
			switch {
			case usageRatio < 1.0 && kind == MetricCPU:
				values[name] = entry{value: requests[name], request: requests[name]}
			case usageRatio < 1.0:
				values[name] = entry{value: target}
			case usageRatio > 1.0 || kind == MetricConcurrency:
				values[name] = entry{value: 0, request: requests[name]}
			}
		}
	}
	if rebalanceUnready {
		for _, name := range unready {
			values[name] = entry{value: 0, request: requests[name]}
		}
	}
	newRatio, _, err := ratio()
	if err != nil {
		return Proposal{}, err
	}
	if math.Abs(1.0-newRatio) <= tolerance || (usageRatio < 1.0 && newRatio > 1.0) || (usageRatio > 1.0 && newRatio < 1.0) {
		return Proposal{Replicas: current, Utilization: util}, nil
	}
	n := int32(math.Ceil(newRatio * float64(len(values))))
	if (newRatio < 1.0 && n > current) || (newRatio > 1.0 && n < current) {
		return Proposal{Replicas: current, Utilization: util}, nil
	}
	return Proposal{Replicas: n, Utilization: util}, nil
}

// Rules is autoscaling/v2 HPAScalingRules with defaults applied.
type Rules struct {
	StabilizationWindow time.Duration
	SelectPolicy        string
	Policies            []v1alpha1.HPAScalingPolicy
}

// DefaultScaleUpRules returns autoscaling/v2's scale-up defaults applied to
// r: no stabilisation, selectPolicy Max, policies "100 % per 15 s" and
// "4 pods per 15 s". Fields set in r are kept.
func DefaultScaleUpRules(r *v1alpha1.ScalingRules) Rules {
	return defaultRules(r, 0, []v1alpha1.HPAScalingPolicy{
		{Type: PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		{Type: PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
	})
}

// DefaultScaleDownRules returns autoscaling/v2's scale-down defaults
// applied to r: a 300 s stabilisation window, selectPolicy Max, policy
// "100 % per 15 s".
func DefaultScaleDownRules(r *v1alpha1.ScalingRules) Rules {
	return defaultRules(r, 300, []v1alpha1.HPAScalingPolicy{
		{Type: PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
	})
}

func defaultRules(r *v1alpha1.ScalingRules, window int32, policies []v1alpha1.HPAScalingPolicy) Rules {
	out := Rules{StabilizationWindow: time.Duration(window) * time.Second, SelectPolicy: SelectMax, Policies: policies}
	if r == nil {
		return out
	}
	if r.StabilizationWindowSeconds != nil {
		out.StabilizationWindow = time.Duration(*r.StabilizationWindowSeconds) * time.Second
	}
	if r.SelectPolicy != "" {
		out.SelectPolicy = r.SelectPolicy
	}
	if len(r.Policies) > 0 {
		out.Policies = r.Policies
	}
	return out
}

type timedRecommendation struct {
	replicas int32
	at       time.Time
}

type scaleEvent struct {
	change int32
	at     time.Time
}

// Autoscaler is the HorizontalPodAutoscaler controller's state and
// algorithm for one service (horizontal.go): the replica calculator,
// stabilisation windows over past recommendations, and scaling-rate
// policies over past scale events, bounded by minReplicas and maxReplicas.
// It is not safe for concurrent use; the Service controller owns it.
type Autoscaler struct {
	Kind MetricKind
	// Target is averageUtilization in percent (MetricCPU) or averageValue
	// in milli-requests (MetricConcurrency).
	Target      int64
	MinReplicas int32
	MaxReplicas int32
	ScaleUp     Rules
	ScaleDown   Rules
	Tolerance   float64
	Clock       clock.PassiveClock

	recommendations []timedRecommendation
	upEvents        []scaleEvent
	downEvents      []scaleEvent
}

// NewAutoscaler builds an Autoscaler from the spec with autoscaling/v2
// defaults (minReplicas 1, behaviour defaults, tolerance 0.1).
func NewAutoscaler(a *v1alpha1.Autoscaling, clk clock.PassiveClock) (*Autoscaler, error) {
	as := &Autoscaler{MinReplicas: 1, MaxReplicas: a.MaxReplicas, Tolerance: DefaultTolerance, Clock: clk}
	if a.MinReplicas != nil {
		as.MinReplicas = *a.MinReplicas
	}
	switch {
	case a.Target.CPUUtilization != nil:
		as.Kind, as.Target = MetricCPU, int64(*a.Target.CPUUtilization)
	case a.Target.Concurrency != nil:
		as.Kind, as.Target = MetricConcurrency, int64(*a.Target.Concurrency)*1000
	default:
		return nil, errors.New("autoscaling has no target; set spec.autoscaling.target.cpuUtilization or .concurrency")
	}
	var up, down *v1alpha1.ScalingRules
	if a.Behavior != nil {
		up, down = a.Behavior.ScaleUp, a.Behavior.ScaleDown
	}
	as.ScaleUp, as.ScaleDown = DefaultScaleUpRules(up), DefaultScaleDownRules(down)
	if as.Clock == nil {
		as.Clock = clock.RealClock{}
	}
	return as, nil
}

// Decision is the outcome of one sync.
type Decision struct {
	Current, Desired int32
	// Metric is the current value against its target, e.g. "cpu 142% / 70%".
	Metric string
	// Reason is the HPA condition reason that bounded the result (e.g.
	// ScaleDownStabilized, ScaleUpLimit, TooManyReplicas) or
	// DesiredWithinRange.
	Reason string
	// Message is the event message when Desired != Current, e.g. "scaled
	// from 1 to 3: cpu utilisation 142% of request, target 70%".
	Message string
}

// Rescale reports whether the decision changes the replica count.
func (d Decision) Rescale() bool { return d.Desired != d.Current }

// Decide runs one HPA sync (reconcileAutoscaler): outside [min, max] the
// count is clamped; otherwise the calculator's proposal is stabilised and
// rate-limited by behaviours. With current = 0 and min > 0 autoscaling is
// off, as upstream. A metric error keeps the current count and is returned.
func (a *Autoscaler) Decide(current int32, metrics []ReplicaMetric) (Decision, error) {
	d := Decision{Current: current, Desired: current}
	switch {
	case current == 0 && a.MinReplicas != 0:
		d.Reason = "ScalingDisabled"
		return d, nil
	case current > a.MaxReplicas:
		d.Desired, d.Reason = a.MaxReplicas, "TooManyReplicas"
		d.Message = fmt.Sprintf("scaled from %d to %d: above maxReplicas", current, d.Desired)
		a.storeScaleEvent(current, d.Desired)
		return d, nil
	case current < a.MinReplicas:
		d.Desired, d.Reason = a.MinReplicas, "TooFewReplicas"
		d.Message = fmt.Sprintf("scaled from %d to %d: below minReplicas", current, d.Desired)
		a.storeScaleEvent(current, d.Desired)
		return d, nil
	}
	p, err := CalcReplicas(a.Kind, current, a.Target, metrics, a.Tolerance)
	if err != nil {
		return d, err
	}
	d.Metric = a.describe(p.Utilization)
	d.Desired, d.Reason = a.normalize(current, p.Replicas)
	if d.Rescale() {
		a.storeScaleEvent(current, d.Desired)
		d.Message = fmt.Sprintf("scaled from %d to %d: %s", current, d.Desired, a.sentence(p.Utilization))
	}
	return d, nil
}

func (a *Autoscaler) describe(util int64) string {
	if a.Kind == MetricCPU {
		return fmt.Sprintf("cpu %d%% / %d%%", util, a.Target)
	}
	return fmt.Sprintf("concurrency %.2f / %.2f", float64(util)/1000, float64(a.Target)/1000)
}

func (a *Autoscaler) sentence(util int64) string {
	if a.Kind == MetricCPU {
		return fmt.Sprintf("cpu utilisation %d%% of request, target %d%%", util, a.Target)
	}
	return fmt.Sprintf("concurrency %.2f in-flight requests per replica, target %.2f", float64(util)/1000, float64(a.Target)/1000)
}

// normalize is normalizeDesiredReplicasWithBehaviors.
func (a *Autoscaler) normalize(current, proposed int32) (int32, string) {
	now := a.Clock.Now()
	// maybeInitScaleDownStabilizationWindow: the first sync records the
	// current count so a fresh controller does not scale down at once.
	if len(a.recommendations) == 0 && a.ScaleDown.StabilizationWindow > 0 {
		a.recommendations = append(a.recommendations, timedRecommendation{current, now})
	}
	stabilized, reason := a.stabilize(now, current, proposed)
	if stabilized == proposed {
		reason = "DesiredWithinRange"
	}
	limited, limitReason := a.rateLimit(now, current, stabilized)
	if limited != stabilized {
		reason = limitReason
	}
	return limited, reason
}

// stabilize is stabilizeRecommendationWithBehaviors: the result is at
// least the minimum recommendation within the scale-up window and at most
// the maximum within the scale-down window.
func (a *Autoscaler) stabilize(now time.Time, current, desired int32) (int32, string) {
	up, down := desired, desired
	upCutoff := now.Add(-a.ScaleUp.StabilizationWindow)
	downCutoff := now.Add(-a.ScaleDown.StabilizationWindow)
	kept := a.recommendations[:0]
	for _, r := range a.recommendations {
		if r.at.After(upCutoff) {
			up = min(up, r.replicas)
		}
		if r.at.After(downCutoff) {
			down = max(down, r.replicas)
		}
		if r.at.After(upCutoff) || r.at.After(downCutoff) {
			kept = append(kept, r)
		}
	}
	a.recommendations = append(kept, timedRecommendation{desired, now})
	rec := current
	if rec < up {
		rec = up
	}
	if rec > down {
		rec = down
	}
	if desired >= current {
		return rec, "ScaleUpStabilized"
	}
	return rec, "ScaleDownStabilized"
}

// rateLimit is convertDesiredReplicasWithBehaviorRate.
func (a *Autoscaler) rateLimit(now time.Time, current, desired int32) (int32, string) {
	switch {
	case desired > current:
		limit := a.scaleUpLimit(now, current)
		if limit < current {
			limit = current
		}
		maxAllowed, reason := a.MaxReplicas, "TooManyReplicas"
		if maxAllowed > limit {
			maxAllowed, reason = limit, "ScaleUpLimit"
		}
		if desired > maxAllowed {
			return maxAllowed, reason
		}
	case desired < current:
		limit := a.scaleDownLimit(now, current)
		if limit > current {
			limit = current
		}
		minAllowed, reason := a.MinReplicas, "TooFewReplicas"
		if minAllowed < limit {
			minAllowed, reason = limit, "ScaleDownLimit"
		}
		if desired < minAllowed {
			return minAllowed, reason
		}
	}
	return desired, "DesiredWithinRange"
}

func changeInPeriod(now time.Time, periodSeconds int32, events []scaleEvent) int32 {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	var n int32
	for _, e := range events {
		if e.at.After(cutoff) {
			n += e.change
		}
	}
	return n
}

// scaleUpLimit is calculateScaleUpLimitWithScalingRules.
func (a *Autoscaler) scaleUpLimit(now time.Time, current int32) int32 {
	r := a.ScaleUp
	if r.SelectPolicy == SelectDisabled {
		return current
	}
	result, pick := int32(math.MinInt32), pickMax
	if r.SelectPolicy == SelectMin {
		result, pick = math.MaxInt32, pickMin
	}
	for _, p := range r.Policies {
		start := current - changeInPeriod(now, p.PeriodSeconds, a.upEvents) + changeInPeriod(now, p.PeriodSeconds, a.downEvents)
		var proposed int32
		if p.Type == PodsScalingPolicy {
			proposed = start + p.Value
		} else {
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

// scaleDownLimit is calculateScaleDownLimitWithBehaviors.
func (a *Autoscaler) scaleDownLimit(now time.Time, current int32) int32 {
	r := a.ScaleDown
	if r.SelectPolicy == SelectDisabled {
		return current
	}
	result, pick := int32(math.MaxInt32), pickMin
	if r.SelectPolicy == SelectMin {
		result, pick = math.MinInt32, pickMax
	}
	for _, p := range r.Policies {
		start := current - changeInPeriod(now, p.PeriodSeconds, a.upEvents) + changeInPeriod(now, p.PeriodSeconds, a.downEvents)
		var proposed int32
		if p.Type == PodsScalingPolicy {
			proposed = start - p.Value
		} else {
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

func longestPeriod(r Rules) time.Duration {
	var p int32
	for _, pol := range r.Policies {
		p = max(p, pol.PeriodSeconds)
	}
	return time.Duration(p) * time.Second
}

// storeScaleEvent records a rescale for the rate policies, forgetting
// events older than the longest policy period.
func (a *Autoscaler) storeScaleEvent(prev, next int32) {
	now := a.Clock.Now()
	prune := func(events []scaleEvent, keep time.Duration) []scaleEvent {
		out := events[:0]
		for _, e := range events {
			if now.Sub(e.at) <= keep {
				out = append(out, e)
			}
		}
		return out
	}
	if next > prev {
		a.upEvents = append(prune(a.upEvents, longestPeriod(a.ScaleUp)), scaleEvent{next - prev, now})
	} else if next < prev {
		a.downEvents = append(prune(a.downEvents, longestPeriod(a.ScaleDown)), scaleEvent{prev - next, now})
	}
}

func pickMax(a, b int32) int32 { return max(a, b) }
func pickMin(a, b int32) int32 { return min(a, b) }
