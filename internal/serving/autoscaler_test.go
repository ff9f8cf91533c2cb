package serving

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// t0 is the fake clock's start in every test here.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// settled is a replica that started 10 min before now, became ready 9 min
// before now and has a 15 s sample ending at now: every rule of groupPods
// counts its sample.
func settled(name string, now time.Time) ReplicaMetric {
	return ReplicaMetric{Name: name, StartTime: now.Add(-10 * time.Minute), Ready: true,
		ReadyTransition: now.Add(-9 * time.Minute), HasValue: true, Timestamp: now, Window: 15 * time.Second,
		RequestMilli: 1000}
}

// cpuPods builds settled CPU replicas at t0: requests 1000m each, usage in
// millicores; usage < 0 marks a missing metric, and indexes listed in
// unready are not ready (and have never been: their Ready condition
// changed at their start).
func cpuPods(usage []int64, unready ...int) []ReplicaMetric {
	out := make([]ReplicaMetric, len(usage))
	for i, u := range usage {
		out[i] = settled(fmt.Sprintf("r%d", i), t0)
		out[i].HasValue, out[i].Value = u >= 0, float64(u)
	}
	for _, i := range unready {
		out[i].Ready, out[i].ReadyTransition = false, out[i].StartTime
	}
	return out
}

func cpuSpec(target int64) HPASpec {
	return HPASpec{Kind: MetricCPU, Target: target, MinReplicas: 1, MaxReplicas: 100,
		Tolerances: Tolerances{DefaultTolerance, DefaultTolerance}, DownscaleStabilization: DefaultDownscaleStabilization,
		CPUInitializationPeriod: DefaultCPUInitializationPeriod, InitialReadinessDelay: DefaultInitialReadinessDelay}
}

func concurrencySpec(target int64) HPASpec {
	s := cpuSpec(target * 1000)
	s.Kind = MetricConcurrency
	return s
}

// with returns p changed by f.
func with(p ReplicaMetric, f func(*ReplicaMetric)) ReplicaMetric { f(&p); return p }

// conc is a settled replica with an in-flight average.
func conc(name string, v float64) ReplicaMetric {
	p := settled(name, t0)
	p.Value = v
	return p
}

// The first rows are replica_calculator_test.go's, with the same numbers;
// the rest pin groupPods' time rules, the missing-sample fallbacks and
// the tolerance band (issue 8, point 6).
func TestCalcReplicasMatchesUpstreamReplicaCalculator(t *testing.T) {
	justStarted := func(p ReplicaMetric) ReplicaMetric { // started 20 s ago, ready 10 s ago
		return with(p, func(p *ReplicaMetric) {
			p.StartTime, p.ReadyTransition, p.Window = t0.Add(-20*time.Second), t0.Add(-10*time.Second), 5*time.Second
		})
	}
	perDirection := func(down, up float64) HPASpec {
		s := cpuSpec(100)
		s.Tolerances = Tolerances{ScaleDown: down, ScaleUp: up}
		return s
	}
	hot := cpuPods([]int64{900, 900})
	tests := []struct {
		name     string
		spec     HPASpec
		current  int32
		pods     []ReplicaMetric
		want     int32
		wantUtil int64
	}{
		{"scale up: ceil(3 × 50/30)", cpuSpec(30), 3, cpuPods([]int64{300, 500, 700}), 5, 50},
		{"scale up with an unready pod counted as 0", cpuSpec(30), 3, cpuPods([]int64{300, 500, 700}, 0), 4, 60},
		{"scale down: ceil(5 × 28/50)", cpuSpec(50), 5, cpuPods([]int64{100, 300, 500, 250, 250}), 3, 28},
		{"within 10% tolerance keeps the count", cpuSpec(100), 3, cpuPods([]int64{1010, 1030, 1020}), 3, 102},
		{"missing metrics count as 100% on scale-down", cpuSpec(100), 4, cpuPods([]int64{400, 95, -1, -1}), 3, 24},
		{"missing metrics count as 0% on scale-up", cpuSpec(50), 4, cpuPods([]int64{1500, 1500, -1, -1}), 6, 150},
		{"missing metrics that reverse the direction keep the count", cpuSpec(50), 4, cpuPods([]int64{1000, 1000, -1, -1}), 4, 100},
		{"unready pods are ignored on scale-down", cpuSpec(50), 3, cpuPods([]int64{100, 100, 900}, 2), 1, 10},

		// Missing samples on a scale-down count as max(100 %, target):
		// (100+100+2×2000)/4000 = 105 % of a 200 % target → ceil(4 × 0.525) = 3
		// (at 100 % it would be 2).
		{"missing metrics count as the target when it is above 100% on scale-down", cpuSpec(200), 4, cpuPods([]int64{100, 100, -1, -1}), 3, 10},

		// The tolerance band is inclusive: exactly ±10 % does not scale.
		{"exactly +10% does not scale", cpuSpec(100), 3, cpuPods([]int64{1100, 1100, 1100}), 3, 110},
		{"just over +10% scales up", cpuSpec(100), 3, cpuPods([]int64{1110, 1110, 1110}), 4, 111},
		{"exactly -10% does not scale", cpuSpec(100), 10, cpuPods([]int64{900, 900, 900, 900, 900, 900, 900, 900, 900, 900}), 10, 90},
		{"scaleUp tolerance 0.05: +6% scales up", perDirection(0.1, 0.05), 3, cpuPods([]int64{1060, 1060, 1060}), 4, 106},
		{"scaleUp tolerance 0.05 leaves scale-down at 10%: -8% keeps", perDirection(0.1, 0.05), 3, cpuPods([]int64{920, 920, 920}), 3, 92},
		{"scaleDown tolerance 0.3: -25% keeps", perDirection(0.3, 0.1), 4, cpuPods([]int64{750, 750, 750, 750}), 4, 75},
		{"scaleDown tolerance 0: -5% scales down", perDirection(0, 0.1), 20, cpuPods(repeat(950, 20)), 19, 95},

		// CPU initialization period (5 min) and initial readiness delay (30 s).
		{"no Ready condition: unready, 0 on scale-up", cpuSpec(50), 3,
			append(cpuPods([]int64{900, 900}), with(settled("new", t0), func(p *ReplicaMetric) { p.ReadyTransition = time.Time{}; p.Value = 900 })), 4, 90},
		{"no start time: unready", cpuSpec(50), 3,
			append(cpuPods([]int64{900, 900}), with(settled("new", t0), func(p *ReplicaMetric) { p.StartTime = time.Time{}; p.Value = 900 })), 4, 90},
		{"just started and not ready: unready, 0 on scale-up", cpuSpec(50), 3,
			append(slicesClone(hot), justStarted(with(settled("new", t0), func(p *ReplicaMetric) { p.Ready = false; p.Value = 2000 }))), 4, 90},
		{"just started, ready, sample began before it was ready: unready", cpuSpec(50), 3,
			append(slicesClone(hot), with(justStarted(settled("new", t0)), func(p *ReplicaMetric) { p.Window = 15 * time.Second; p.Value = 2000 })), 4, 90},
		{"just started, ready, sample wholly after it was ready: counts", cpuSpec(50), 3,
			append(slicesClone(hot), with(justStarted(settled("new", t0)), func(p *ReplicaMetric) { p.Value = 2000 })), 8, 126},
		{"past the initialization period, never ready: unready", cpuSpec(50), 3,
			append(slicesClone(hot), with(settled("new", t0), func(p *ReplicaMetric) {
				p.Ready, p.ReadyTransition, p.Value = false, p.StartTime.Add(29*time.Second), 2000
			})), 4, 90},
		{"past the initialization period, was ready and became unready: its sample counts", cpuSpec(50), 3,
			append(slicesClone(hot), with(settled("new", t0), func(p *ReplicaMetric) {
				p.Ready, p.ReadyTransition, p.Value = false, p.StartTime.Add(31*time.Second), 2000
			})), 8, 126},
		{"a pending pod is unready: 0 on scale-up", cpuSpec(50), 3,
			append(slicesClone(hot), ReplicaMetric{Name: "new", Pending: true, RequestMilli: 1000}), 4, 90},
		{"unready pods on a scale-down are left out, not counted", cpuSpec(50), 3,
			append(cpuPods([]int64{100, 100}), with(settled("new", t0), func(p *ReplicaMetric) { p.Ready, p.ReadyTransition, p.Value = false, p.StartTime, 0 })), 1, 10},

		// The concurrency metric (a Pods metric, calcPlainMetricReplicas).
		{"concurrency: ceil(2 × 4/2)", concurrencySpec(2), 2, []ReplicaMetric{conc("a", 4), conc("b", 4)}, 4, 4000},
		{"concurrency: an unready replica with a sample still counts", concurrencySpec(2), 2, []ReplicaMetric{
			conc("a", 4), with(conc("b", 0), func(p *ReplicaMetric) { p.Ready = false })}, 2, 2000},
		{"concurrency: a just-started unready replica with a sample still counts", concurrencySpec(2), 2, []ReplicaMetric{
			conc("a", 4), justStarted(with(conc("b", 0), func(p *ReplicaMetric) { p.Ready = false }))}, 2, 2000},
		{"concurrency: missing counts as 0 on scale-up", concurrencySpec(2), 3, []ReplicaMetric{
			conc("a", 6), conc("b", 6), with(conc("c", 0), func(p *ReplicaMetric) { p.HasValue = false })}, 6, 6000},
		{"concurrency: missing counts as exactly the target on scale-down", concurrencySpec(4), 4, []ReplicaMetric{
			conc("a", 1), conc("b", 1), with(conc("c", 0), func(p *ReplicaMetric) { p.HasValue = false }),
			with(conc("d", 0), func(p *ReplicaMetric) { p.HasValue = false })}, 3, 1000},
		{"concurrency: a pending replica counts as 0 on scale-up", concurrencySpec(2), 2, []ReplicaMetric{
			conc("a", 6), conc("b", 6), {Name: "c", Pending: true}}, 6, 6000},
		{"concurrency: exactly +10% does not scale", concurrencySpec(10), 2, []ReplicaMetric{conc("a", 11), conc("b", 11)}, 2, 11000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CalcReplicas(tt.spec, tt.current, tt.pods, t0)
			if err != nil {
				t.Fatal(err)
			}
			if p.Replicas != tt.want || p.Utilization != tt.wantUtil {
				t.Errorf("got %d replicas at %d, want %d at %d", p.Replicas, p.Utilization, tt.want, tt.wantUtil)
			}
		})
	}
}

func repeat(v int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func slicesClone(p []ReplicaMetric) []ReplicaMetric { return append([]ReplicaMetric(nil), p...) }

func TestCalcReplicasWithoutMetricsIsAnError(t *testing.T) {
	for name, pods := range map[string][]ReplicaMetric{
		"all missing":        cpuPods([]int64{-1, -1}),
		"all just started":   {with(settled("a", t0), func(p *ReplicaMetric) { p.StartTime, p.ReadyTransition = t0.Add(-time.Second), t0 })},
		"all pending":        {{Name: "a", Pending: true}},
		"all never ready":    cpuPods([]int64{500, 500}, 0, 1),
		"no replicas at all": nil,
	} {
		if _, err := CalcReplicas(cpuSpec(70), 2, pods, t0); !errors.Is(err, ErrNoMetrics) {
			t.Errorf("%s: got %v, want ErrNoMetrics", name, err)
		}
	}
}

func i32(v int32) *int32 { return &v }

func newTestAutoscaler(t *testing.T, spec v1alpha1.Autoscaling) (*Autoscaler, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	a, err := NewAutoscaler(&spec, clk)
	if err != nil {
		t.Fatal(err)
	}
	return a, clk
}

// uniform returns n settled replicas each at util percent of a 1000m
// request, sampled at now.
func uniform(n int, util int64, now time.Time) []ReplicaMetric {
	out := make([]ReplicaMetric, n)
	for i := range out {
		out[i] = settled(fmt.Sprintf("r%d", i), now)
		out[i].Value = float64(util * 10)
	}
	return out
}

type step struct {
	after   time.Duration // clock advance before this sync
	current int32
	util    int64 // percent of request on each of current replicas
	want    int32
	reason  string
}

func runSteps(t *testing.T, a *Autoscaler, clk *clocktesting.FakeClock, steps []step) {
	t.Helper()
	for i, s := range steps {
		clk.Step(s.after)
		d, err := a.Decide(s.current, uniform(int(s.current), s.util, clk.Now()))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if d.Desired != s.want || (s.reason != "" && d.Reason != s.reason) {
			t.Fatalf("step %d: from %d got %d (%s), want %d (%s)", i, s.current, d.Desired, d.Reason, s.want, s.reason)
		}
	}
}

func cpuTarget(pct int32) v1alpha1.AutoscalingTarget {
	return v1alpha1.AutoscalingTarget{CPUUtilization: i32(pct)}
}

// An HPA without behavior is normalised by normalizeDesiredReplicas:
// scale-up bounded by max(2 × current, 4) each sync with no rate period,
// scale-down held by the controller's 5 min window (issue 8, point 5).
func TestAutoscalerWithoutBehaviorScalesAsTheLegacyController(t *testing.T) {
	tests := []struct {
		name  string
		spec  v1alpha1.Autoscaling
		steps []step
	}{
		{"3 → 6 under load, not 7 (the cluster's answer)", v1alpha1.Autoscaling{MaxReplicas: 20, Target: cpuTarget(10)}, []step{
			{0, 3, 100, 6, "ScaleUpLimit"},
		}},
		{"1 → 4: the minimum limit is 4 replicas", v1alpha1.Autoscaling{MaxReplicas: 20, Target: cpuTarget(10)}, []step{
			{0, 1, 100, 4, "ScaleUpLimit"},
		}},
		{"no 15 s rate period: doubles again on the next sync", v1alpha1.Autoscaling{MaxReplicas: 40, Target: cpuTarget(10)}, []step{
			{0, 3, 100, 6, "ScaleUpLimit"},
			{time.Second, 6, 100, 12, "ScaleUpLimit"},
			{time.Second, 12, 100, 24, "ScaleUpLimit"},
			{time.Second, 24, 100, 40, "TooManyReplicas"},
		}},
		{"maxReplicas below the limit says TooManyReplicas", v1alpha1.Autoscaling{MaxReplicas: 5, Target: cpuTarget(10)}, []step{
			{0, 3, 100, 5, "TooManyReplicas"},
		}},
		{"scale-down waits out 5 min from the last higher recommendation, cutoff inclusive", v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(50)}, []step{
			{0, 4, 50, 4, "DesiredWithinRange"},
			{time.Minute, 4, 10, 4, "ScaleDownStabilized"},
			// 300 s after the "4"s: stabilizeRecommendation keeps samples
			// not Before the cutoff, so they still count.
			{4 * time.Minute, 4, 10, 4, "ScaleDownStabilized"},
			{time.Nanosecond, 4, 10, 1, "DesiredWithinRange"},
		}},
		{"scale-down is not rate-limited and stops at minReplicas", v1alpha1.Autoscaling{MinReplicas: i32(2), MaxReplicas: 10, Target: cpuTarget(50)}, []step{
			{0, 10, 50, 10, ""},
			{5*time.Minute + time.Second, 10, 1, 2, "TooFewReplicas"},
		}},
		{"a fresh controller does not scale down at once", v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(50)}, []step{
			{0, 6, 10, 6, "ScaleDownStabilized"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk := newTestAutoscaler(t, tt.spec)
			runSteps(t, a, clk, tt.steps)
		})
	}
}

// With a behavior — even one that only sets a tolerance — the API server
// fills in autoscaling/v2's defaults and the controller takes the behavior
// path: up by max(100 %, 4 pods) per 15 s.
func TestAutoscalerWithBehaviorUsesTheAutoscalingV2Defaults(t *testing.T) {
	tol := resource.MustParse("0.05")
	a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 20, Target: cpuTarget(10),
		Behavior: &v1alpha1.ScalingBehavior{ScaleUp: &v1alpha1.ScalingRules{Tolerance: &tol}}})
	if a.Tolerances != (Tolerances{ScaleDown: 0.1, ScaleUp: 0.05}) {
		t.Fatalf("tolerances %+v, want down 0.1 up 0.05", a.Tolerances)
	}
	runSteps(t, a, clk, []step{{0, 3, 100, 7, "ScaleUpLimit"}})
}

func TestAutoscalerDefaultScaleUpPolicyIsMaxOf100PercentAnd4Pods(t *testing.T) {
	a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 20, Target: cpuTarget(10), Behavior: &v1alpha1.ScalingBehavior{}})
	runSteps(t, a, clk, []step{
		// proposal ceil(1 × 100/10) = 10; limit max(ceil(1×2), 1+4) = 5.
		{0, 1, 100, 5, "ScaleUpLimit"},
		// 5 s later the period still holds the +4: start 1, limit 5.
		{5 * time.Second, 5, 20, 5, "ScaleUpLimit"},
		// after 15 s the period is clear: limit max(10, 9) = 10.
		{11 * time.Second, 5, 20, 10, "DesiredWithinRange"},
		// maxReplicas bounds the result.
		{16 * time.Second, 10, 100, 20, "TooManyReplicas"},
		{16 * time.Second, 20, 100, 20, ""},
	})
}

func TestAutoscalerBehaviourScaleDownStabilisationKeepsTheHighestRecentRecommendation(t *testing.T) {
	a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(50), Behavior: &v1alpha1.ScalingBehavior{}})
	runSteps(t, a, clk, []step{
		{0, 4, 50, 4, ""},
		// load drops: proposal 1, but 4 was recommended within 300 s.
		{60 * time.Second, 4, 10, 4, "ScaleDownStabilized"},
		// exactly 300 s after the "4"s: the behavior path keeps only
		// samples After the cutoff, so they no longer count.
		{240 * time.Second, 4, 10, 1, "DesiredWithinRange"},
	})
}

func TestAutoscalerBehaviourPolicies(t *testing.T) {
	zero := i32(0)
	t.Run("Pods policy limits scale-down to 1 per 60 s", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(50),
			Behavior: &v1alpha1.ScalingBehavior{ScaleDown: &v1alpha1.ScalingRules{StabilizationWindowSeconds: zero,
				Policies: []v1alpha1.HPAScalingPolicy{{Type: "Pods", Value: 1, PeriodSeconds: 60}}}}})
		runSteps(t, a, clk, []step{
			{0, 5, 5, 4, "ScaleDownLimit"},
			{30 * time.Second, 4, 5, 4, "ScaleDownLimit"},
			{31 * time.Second, 4, 5, 3, "ScaleDownLimit"},
		})
	})
	t.Run("Percent policy halves at most per period", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(50),
			Behavior: &v1alpha1.ScalingBehavior{ScaleDown: &v1alpha1.ScalingRules{StabilizationWindowSeconds: zero,
				Policies: []v1alpha1.HPAScalingPolicy{{Type: "Percent", Value: 50, PeriodSeconds: 60}}}}})
		runSteps(t, a, clk, []step{{0, 10, 5, 5, "ScaleDownLimit"}})
	})
	t.Run("selectPolicy Min picks the smaller scale-up", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(10),
			Behavior: &v1alpha1.ScalingBehavior{ScaleUp: &v1alpha1.ScalingRules{SelectPolicy: "Min"}}})
		// policies default to 100% and 4 pods per 15 s: min(4, 6) = 4.
		runSteps(t, a, clk, []step{{0, 2, 100, 4, "ScaleUpLimit"}})
	})
	t.Run("selectPolicy Disabled never scales down", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(50),
			Behavior: &v1alpha1.ScalingBehavior{ScaleDown: &v1alpha1.ScalingRules{StabilizationWindowSeconds: zero, SelectPolicy: "Disabled"}}})
		runSteps(t, a, clk, []step{{0, 3, 1, 3, ""}})
	})
	t.Run("scale-up stabilisation takes the lowest recent recommendation", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(50),
			Behavior: &v1alpha1.ScalingBehavior{ScaleUp: &v1alpha1.ScalingRules{StabilizationWindowSeconds: i32(60)}}})
		runSteps(t, a, clk, []step{
			{0, 2, 50, 2, ""},
			{10 * time.Second, 2, 100, 2, "ScaleUpStabilized"},
			{51 * time.Second, 2, 100, 4, "DesiredWithinRange"},
		})
	})
}

func TestAutoscalerClampsToMinAndMaxAndWritesTheEventMessage(t *testing.T) {
	a, _ := newTestAutoscaler(t, v1alpha1.Autoscaling{MinReplicas: i32(2), MaxReplicas: 3, Target: cpuTarget(70)})
	if d, _ := a.Decide(5, nil); d.Desired != 3 || d.Reason != "TooManyReplicas" {
		t.Errorf("above max: got %d (%s), want 3", d.Desired, d.Reason)
	}
	if d, _ := a.Decide(1, nil); d.Desired != 2 || d.Reason != "TooFewReplicas" {
		t.Errorf("below min: got %d (%s), want 2", d.Desired, d.Reason)
	}
	if d, _ := a.Decide(0, nil); d.Desired != 0 || d.Reason != "ScalingDisabled" {
		t.Errorf("at zero: got %d (%s), want 0 ScalingDisabled", d.Desired, d.Reason)
	}
	a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 4, Target: cpuTarget(70)})
	d, err := a.Decide(1, uniform(1, 142, clk.Now()))
	if err != nil {
		t.Fatal(err)
	}
	want := "New size: 3; reason: cpu resource utilization (percentage of request) above target"
	if d.Desired != 3 || d.Message != want || d.Metric != "cpu 142% / 70%" {
		t.Errorf("got %d %q %q, want 3 %q", d.Desired, d.Message, d.Metric, want)
	}
}

// ReconcileHPA is pure: the history it is given is not changed, and the
// same inputs give the same answer.
func TestReconcileHPAIsPure(t *testing.T) {
	s, err := SpecFor(&v1alpha1.Autoscaling{MaxReplicas: 10, Target: cpuTarget(50), Behavior: &v1alpha1.ScalingBehavior{}})
	if err != nil {
		t.Fatal(err)
	}
	hist := HPAHistory{Recommendations: []Recommendation{{4, t0.Add(-time.Minute)}, {4, t0.Add(-10 * time.Minute)}},
		ScaleUpEvents: []ScaleEvent{{2, t0.Add(-time.Hour)}}}
	before := fmt.Sprint(hist)
	pods := uniform(4, 10, t0)
	d1, h1, err1 := ReconcileHPA(s, hist, 4, pods, t0)
	d2, h2, err2 := ReconcileHPA(s, hist, 4, pods, t0)
	if fmt.Sprint(hist) != before {
		t.Errorf("history changed: %s, was %s", fmt.Sprint(hist), before)
	}
	if d1 != d2 || fmt.Sprint(h1) != fmt.Sprint(h2) || err1 != nil || err2 != nil {
		t.Errorf("two calls differ: %+v %v / %+v %v", d1, h1, d2, h2)
	}
	if d1.Desired != 4 || d1.Reason != "ScaleDownStabilized" {
		t.Errorf("got %d (%s), want 4 ScaleDownStabilized", d1.Desired, d1.Reason)
	}
}
