package serving

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// The HPA controller's fixed rates and defaults (Kubernetes v1.37.2,
// pkg/controller/podautoscaler/horizontal.go and the kube-controller-manager
// flags).
const (
	// DefaultSyncPeriod is --horizontal-pod-autoscaler-sync-period (15 s).
	DefaultSyncPeriod = 15 * time.Second
	// DefaultDownscaleStabilization is
	// --horizontal-pod-autoscaler-downscale-stabilization (5 min): the
	// scale-down window of an HPA without behavior, and of one whose
	// behavior.scaleDown leaves stabilizationWindowSeconds unset.
	DefaultDownscaleStabilization = 5 * time.Minute
	// scaleUpLimitFactor and scaleUpLimitMinimum bound one sync's scale-up
	// of an HPA without behavior to max(2 × current, 4) replicas
	// (calculateScaleUpLimit).
	scaleUpLimitFactor  = 2.0
	scaleUpLimitMinimum = 4.0
)

// Scaling policy types and select policies, as autoscaling/v2.
const (
	PodsScalingPolicy    = "Pods"
	PercentScalingPolicy = "Percent"
	SelectMax            = "Max"
	SelectMin            = "Min"
	SelectDisabled       = "Disabled"
)

// Rules is autoscaling/v2 HPAScalingRules with the API server's defaults
// applied (GenerateHPAScaleUpRules / GenerateHPAScaleDownRules).
type Rules struct {
	StabilizationWindow time.Duration
	SelectPolicy        string
	Policies            []v1alpha1.HPAScalingPolicy
}

// HPASpec is what one HPA sync decides from: the metric and its target,
// the replica bounds, the behavior (nil ScaleUp and ScaleDown for an HPA
// without spec.behavior, which the controller normalises with
// normalizeDesiredReplicas, not with the autoscaling/v2 behavior
// defaults), the tolerances and the controller's flags.
type HPASpec struct {
	Kind MetricKind
	// Target is averageUtilization in percent (MetricCPU) or averageValue
	// in milli-requests (MetricConcurrency).
	Target      int64
	MinReplicas int32
	MaxReplicas int32
	// ScaleUp and ScaleDown are both set (spec.behavior given, defaults
	// filled in) or both nil (no behavior).
	ScaleUp, ScaleDown *Rules
	Tolerances         Tolerances
	// DownscaleStabilization is the scale-down window without behavior.
	DownscaleStabilization  time.Duration
	CPUInitializationPeriod time.Duration
	InitialReadinessDelay   time.Duration
}

// Recommendation is one past sync's unstabilised desired count
// (horizontal.go's timestampedRecommendation).
type Recommendation struct {
	Replicas int32
	At       time.Time
}

// ScaleEvent is one past rescale by Change replicas (timestampedScaleEvent);
// kept only for an HPA with behavior, whose rate policies read them.
type ScaleEvent struct {
	Change int32
	At     time.Time
}

// HPAHistory is what the controller remembers of an HPA between syncs:
// its recommendations and its scale-up and scale-down events.
type HPAHistory struct {
	Recommendations []Recommendation
	ScaleUpEvents   []ScaleEvent
	ScaleDownEvents []ScaleEvent
}

func (h HPAHistory) clone() HPAHistory {
	return HPAHistory{slices.Clone(h.Recommendations), slices.Clone(h.ScaleUpEvents), slices.Clone(h.ScaleDownEvents)}
}

// Decision is the outcome of one sync.
type Decision struct {
	Current, Desired int32
	// Metric is the current value against its target, e.g. "cpu 142% / 70%".
	Metric string
	// Reason is the HPA condition reason that bounded the result
	// (ScaleDownStabilized, ScaleUpStabilized, ScaleUpLimit,
	// ScaleDownLimit, TooManyReplicas, TooFewReplicas, ScalingDisabled) or
	// DesiredWithinRange.
	Reason string
	// Message is the event message when Desired != Current, e.g. "scaled
	// from 1 to 3: cpu utilisation 142% of request, target 70%".
	Message string
}

// Rescale reports whether the decision changes the replica count.
func (d Decision) Rescale() bool { return d.Desired != d.Current }

// ReconcileHPA is one sync of the HPA controller (reconcileAutoscaler) as
// a pure function of the spec, what the controller remembers, the
// current replica count (the scale's spec.replicas), the replicas' samples
// and the time. It returns the decision and the history to pass to the
// next sync; hist is not modified.
//
// The first sync records current as a recommendation
// (recordInitialRecommendation). With current = 0 (and minReplicas > 0)
// scaling is disabled; outside [min, max] the count is clamped without
// reading metrics; otherwise CalcReplicas proposes a count, which is
// normalised by normalizeDesiredReplicas (no behavior: scale-down
// stabilised over DownscaleStabilization, scale-up at most
// max(2 × current, 4) per sync) or normalizeDesiredReplicasWithBehaviors.
// A metric error keeps the current count and is returned.
func ReconcileHPA(s HPASpec, hist HPAHistory, current int32, pods []ReplicaMetric, now time.Time) (Decision, HPAHistory, error) {
	h := hist.clone()
	if len(h.Recommendations) == 0 {
		h.Recommendations = []Recommendation{{current, now}}
	}
	d := Decision{Current: current, Desired: current}
	switch {
	case current == 0 && s.MinReplicas != 0:
		d.Reason = "ScalingDisabled"
		return d, h, nil
	case current > s.MaxReplicas:
		d.Desired, d.Reason = s.MaxReplicas, "TooManyReplicas"
		d.Message = rescaleMessage(d.Desired, "Current number of replicas above Spec.MaxReplicas")
		h.storeScaleEvent(s, current, d.Desired, now)
		return d, h, nil
	case current < s.MinReplicas:
		d.Desired, d.Reason = s.MinReplicas, "TooFewReplicas"
		d.Message = rescaleMessage(d.Desired, "Current number of replicas below Spec.MinReplicas")
		h.storeScaleEvent(s, current, d.Desired, now)
		return d, h, nil
	}
	p, err := CalcReplicas(s, current, pods, now)
	if err != nil {
		return d, h, err
	}
	d.Metric = s.describe(p.Utilization)
	if s.ScaleUp == nil || s.ScaleDown == nil {
		d.Desired, d.Reason = h.normalize(s, current, p.Replicas, now)
	} else {
		d.Desired, d.Reason = h.normalizeWithBehaviors(s, current, p.Replicas, now)
	}
	if d.Rescale() {
		h.storeScaleEvent(s, current, d.Desired, now)
		reason := "All metrics below target"
		if p.Replicas > current {
			reason = s.metricName() + " above target"
		}
		d.Message = rescaleMessage(d.Desired, reason)
	}
	return d, h, nil
}

// ConcurrencyMetricName is the Pods metric a concurrency target scales on
// (the name internal/kube renders, kube.InflightMetric).
const ConcurrencyMetricName = "petrel_inflight_requests"

// rescaleMessage is the SuccessfulRescale event's message, worded as the
// HPA controller's (reconcileAutoscaler in
// pkg/controller/podautoscaler/horizontal.go).
func rescaleMessage(size int32, reason string) string {
	return fmt.Sprintf("New size: %d; reason: %s", size, reason)
}

// metricName names the metric as the HPA controller does in its events:
// computeStatusForResourceMetricGeneric and computeStatusForPodsMetric.
func (s HPASpec) metricName() string {
	if s.Kind == MetricCPU {
		return "cpu resource utilization (percentage of request)"
	}
	return "pods metric " + ConcurrencyMetricName
}

func (s HPASpec) describe(util int64) string {
	if s.Kind == MetricCPU {
		return fmt.Sprintf("cpu %d%% / %d%%", util, s.Target)
	}
	return fmt.Sprintf("concurrency %.2f / %.2f", float64(util)/1000, float64(s.Target)/1000)
}

// normalize is normalizeDesiredReplicas, the path of an HPA without
// behavior: stabilizeRecommendation (the highest recommendation not older
// than DownscaleStabilization, this one included), then
// convertDesiredReplicasWithRules (scale-up limit max(2 × current, 4),
// then min/max).
func (h *HPAHistory) normalize(s HPASpec, current, proposed int32, now time.Time) (int32, string) {
	// stabilizeRecommendation: samples older than the cutoff are dropped
	// (upstream overwrites one of them; the others are never read again).
	cutoff := now.Add(-s.DownscaleStabilization)
	stabilized := proposed
	kept := h.Recommendations[:0]
	for _, r := range h.Recommendations {
		if r.At.Before(cutoff) {
			continue
		}
		stabilized = max(stabilized, r.Replicas)
		kept = append(kept, r)
	}
	h.Recommendations = append(kept, Recommendation{proposed, now})
	reason := "DesiredWithinRange"
	if stabilized != proposed {
		reason = "ScaleDownStabilized"
	}
	desired, limitReason := convertDesiredReplicasWithRules(current, stabilized, s.MinReplicas, s.MaxReplicas)
	if desired != stabilized {
		reason = limitReason
	}
	return desired, reason
}

// convertDesiredReplicasWithRules clamps desired to [min, limit], where
// the limit is max(2 × current, 4) (calculateScaleUpLimit) or max when
// that is lower.
func convertDesiredReplicasWithRules(current, desired, minReplicas, maxReplicas int32) (int32, string) {
	scaleUpLimit := int32(math.Max(scaleUpLimitFactor*float64(current), scaleUpLimitMinimum))
	maxAllowed, reason := maxReplicas, "TooManyReplicas"
	if maxReplicas > scaleUpLimit {
		maxAllowed, reason = scaleUpLimit, "ScaleUpLimit"
	}
	switch {
	case desired < minReplicas:
		return minReplicas, "TooFewReplicas"
	case desired > maxAllowed:
		return maxAllowed, reason
	}
	return desired, "DesiredWithinRange"
}

// normalizeWithBehaviors is normalizeDesiredReplicasWithBehaviors:
// stabilizeRecommendationWithBehaviors, then
// convertDesiredReplicasWithBehaviorRate.
func (h *HPAHistory) normalizeWithBehaviors(s HPASpec, current, proposed int32, now time.Time) (int32, string) {
	stabilized, reason := h.stabilizeWithBehaviors(s, now, current, proposed)
	if stabilized == proposed {
		reason = "DesiredWithinRange"
	}
	limited, limitReason := h.rateLimit(s, now, current, stabilized)
	if limited != stabilized {
		reason = limitReason
	}
	return limited, reason
}

// stabilizeWithBehaviors is stabilizeRecommendationWithBehaviors: the
// result is at least the lowest recommendation newer than the scale-up
// window and at most the highest newer than the scale-down window.
func (h *HPAHistory) stabilizeWithBehaviors(s HPASpec, now time.Time, current, desired int32) (int32, string) {
	up, down := desired, desired
	upCutoff := now.Add(-s.ScaleUp.StabilizationWindow)
	downCutoff := now.Add(-s.ScaleDown.StabilizationWindow)
	kept := h.Recommendations[:0]
	for _, r := range h.Recommendations {
		if r.At.After(upCutoff) {
			up = min(up, r.Replicas)
		}
		if r.At.After(downCutoff) {
			down = max(down, r.Replicas)
		}
		if !(r.At.Before(upCutoff) && r.At.Before(downCutoff)) {
			kept = append(kept, r)
		}
	}
	h.Recommendations = append(kept, Recommendation{desired, now})
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
func (h *HPAHistory) rateLimit(s HPASpec, now time.Time, current, desired int32) (int32, string) {
	switch {
	case desired > current:
		limit := h.scaleUpLimit(*s.ScaleUp, now, current)
		if limit < current {
			limit = current
		}
		maxAllowed, reason := s.MaxReplicas, "TooManyReplicas"
		if maxAllowed > limit {
			maxAllowed, reason = limit, "ScaleUpLimit"
		}
		if desired > maxAllowed {
			return maxAllowed, reason
		}
	case desired < current:
		limit := h.scaleDownLimit(*s.ScaleDown, now, current)
		if limit > current {
			limit = current
		}
		minAllowed, reason := s.MinReplicas, "TooFewReplicas"
		if minAllowed < limit {
			minAllowed, reason = limit, "ScaleDownLimit"
		}
		if desired < minAllowed {
			return minAllowed, reason
		}
	}
	return desired, "DesiredWithinRange"
}

// changeInPeriod is getReplicasChangePerPeriod.
func changeInPeriod(now time.Time, periodSeconds int32, events []ScaleEvent) int32 {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	var n int32
	for _, e := range events {
		if e.At.After(cutoff) {
			n += e.Change
		}
	}
	return n
}

// scaleUpLimit is calculateScaleUpLimitWithScalingRules.
func (h *HPAHistory) scaleUpLimit(r Rules, now time.Time, current int32) int32 {
	if r.SelectPolicy == SelectDisabled {
		return current
	}
	result, pick := int32(math.MinInt32), pickMax
	if r.SelectPolicy == SelectMin {
		result, pick = math.MaxInt32, pickMin
	}
	for _, p := range r.Policies {
		start := current - changeInPeriod(now, p.PeriodSeconds, h.ScaleUpEvents) + changeInPeriod(now, p.PeriodSeconds, h.ScaleDownEvents)
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
func (h *HPAHistory) scaleDownLimit(r Rules, now time.Time, current int32) int32 {
	if r.SelectPolicy == SelectDisabled {
		return current
	}
	result, pick := int32(math.MaxInt32), pickMin
	if r.SelectPolicy == SelectMin {
		result, pick = math.MinInt32, pickMax
	}
	for _, p := range r.Policies {
		start := current - changeInPeriod(now, p.PeriodSeconds, h.ScaleUpEvents) + changeInPeriod(now, p.PeriodSeconds, h.ScaleDownEvents)
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

func longestPeriod(r *Rules) time.Duration {
	var p int32
	for _, pol := range r.Policies {
		p = max(p, pol.PeriodSeconds)
	}
	return time.Duration(p) * time.Second
}

// storeScaleEvent records a rescale for the rate policies, forgetting
// events older than the longest policy period (upstream marks them
// outdated and reuses their slot). Without behavior nothing is stored, as
// upstream.
func (h *HPAHistory) storeScaleEvent(s HPASpec, prev, next int32, now time.Time) {
	if s.ScaleUp == nil || s.ScaleDown == nil {
		return
	}
	prune := func(events []ScaleEvent, keep time.Duration) []ScaleEvent {
		out := events[:0]
		for _, e := range events {
			if !e.At.Before(now.Add(-keep)) {
				out = append(out, e)
			}
		}
		return out
	}
	if next > prev {
		h.ScaleUpEvents = append(prune(h.ScaleUpEvents, longestPeriod(s.ScaleUp)), ScaleEvent{next - prev, now})
	} else if next < prev {
		h.ScaleDownEvents = append(prune(h.ScaleDownEvents, longestPeriod(s.ScaleDown)), ScaleEvent{prev - next, now})
	}
}

func pickMax(a, b int32) int32 { return max(a, b) }
func pickMin(a, b int32) int32 { return min(a, b) }
