package serving

import (
	"errors"
	"time"

	"k8s.io/utils/clock"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// DefaultScaleUpRules returns autoscaling/v2's scale-up defaults applied to
// r (GenerateHPAScaleUpRules): no stabilisation, selectPolicy Max,
// policies "4 pods per 15 s" and "100 % per 15 s". Fields set in r are
// kept. They apply only to an HPA that has a behavior.
func DefaultScaleUpRules(r *v1alpha1.ScalingRules) Rules {
	return defaultRules(r, 0, []v1alpha1.HPAScalingPolicy{
		{Type: PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
		{Type: PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
	})
}

// DefaultScaleDownRules returns autoscaling/v2's scale-down defaults
// applied to r (GenerateHPAScaleDownRules, then the controller's
// maybeInitScaleDownStabilizationWindow): the controller's 300 s
// stabilisation window, selectPolicy Max, policy "100 % per 15 s".
func DefaultScaleDownRules(r *v1alpha1.ScalingRules) Rules {
	return defaultRules(r, int32(DefaultDownscaleStabilization/time.Second), []v1alpha1.HPAScalingPolicy{
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

// SpecFor turns spec.autoscaling into the HPASpec the controller would
// sync with: minReplicas defaults to 1; a behavior gets the autoscaling/v2
// defaults for what it leaves out, and no behavior stays nil (the
// controller's normalizeDesiredReplicas path); each direction's tolerance
// is behavior.scaleUp/scaleDown.tolerance or DefaultTolerance
// (tolerancesForHpa); the controller flags take their defaults.
func SpecFor(a *v1alpha1.Autoscaling) (HPASpec, error) {
	s := HPASpec{MinReplicas: 1, MaxReplicas: a.MaxReplicas,
		Tolerances:              Tolerances{ScaleDown: DefaultTolerance, ScaleUp: DefaultTolerance},
		DownscaleStabilization:  DefaultDownscaleStabilization,
		CPUInitializationPeriod: DefaultCPUInitializationPeriod,
		InitialReadinessDelay:   DefaultInitialReadinessDelay,
	}
	if a.MinReplicas != nil {
		s.MinReplicas = *a.MinReplicas
	}
	switch {
	case a.Target.CPUUtilization != nil:
		s.Kind, s.Target = MetricCPU, int64(*a.Target.CPUUtilization)
	case a.Target.Concurrency != nil:
		s.Kind, s.Target = MetricConcurrency, int64(*a.Target.Concurrency)*1000
	default:
		return HPASpec{}, errors.New("autoscaling has no target; set spec.autoscaling.target.cpuUtilization or .concurrency")
	}
	if b := a.Behavior; b != nil {
		up, down := DefaultScaleUpRules(b.ScaleUp), DefaultScaleDownRules(b.ScaleDown)
		s.ScaleUp, s.ScaleDown = &up, &down
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			s.Tolerances.ScaleUp = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			s.Tolerances.ScaleDown = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
	}
	return s, nil
}

// Autoscaler is the HorizontalPodAutoscaler controller for one service:
// its spec, the history it keeps between syncs and a clock; each Decide
// is one ReconcileHPA. It is not safe for concurrent use; the Service
// controller owns it.
type Autoscaler struct {
	HPASpec
	Clock clock.PassiveClock

	history HPAHistory
}

// NewAutoscaler builds an Autoscaler from the spec (see SpecFor); a nil
// clock is the real one.
func NewAutoscaler(a *v1alpha1.Autoscaling, clk clock.PassiveClock) (*Autoscaler, error) {
	s, err := SpecFor(a)
	if err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Autoscaler{HPASpec: s, Clock: clk}, nil
}

// Decide runs one HPA sync at the clock's now over the current replica
// count (the replicas the controller aims for) and the replicas' samples,
// and remembers its recommendation and any rescale for the next. A metric
// error keeps the current count and is returned (ErrNoMetrics while no
// ready replica has a sample).
func (a *Autoscaler) Decide(current int32, metrics []ReplicaMetric) (Decision, error) {
	d, h, err := ReconcileHPA(a.HPASpec, a.history, current, metrics, a.Clock.Now())
	a.history = h
	return d, err
}
