package serving

import (
	"errors"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// cpuPods builds CPU metrics: requests 1000m each, usage in millicores;
// usage < 0 marks a missing metric, and names listed in unready are not ready.
func cpuPods(usage []int64, unready ...int) []ReplicaMetric {
	out := make([]ReplicaMetric, len(usage))
	for i, u := range usage {
		out[i] = ReplicaMetric{Name: fmt.Sprintf("r%d", i), Ready: true, HasValue: u >= 0, Value: float64(u), RequestMilli: 1000}
	}
	for _, i := range unready {
		out[i].Ready = false
	}
	return out
}

// The cases are replica_calculator_test.go's, with the same numbers.
func TestCalcReplicasMatchesUpstreamReplicaCalculator(t *testing.T) {
	tests := []struct {
		name     string
		kind     MetricKind
		current  int32
		target   int64
		metrics  []ReplicaMetric
		want     int32
		wantUtil int64
	}{
		{"scale up: ceil(3 × 50/30)", MetricCPU, 3, 30, cpuPods([]int64{300, 500, 700}), 5, 50},
		{"scale up with an unready pod counted as 0", MetricCPU, 3, 30, cpuPods([]int64{300, 500, 700}, 0), 4, 60},
		{"scale down: ceil(5 × 28/50)", MetricCPU, 5, 50, cpuPods([]int64{100, 300, 500, 250, 250}), 3, 28},
		{"within 10% tolerance keeps the count", MetricCPU, 3, 100, cpuPods([]int64{1010, 1030, 1020}), 3, 102},
		{"missing metrics count as 100% on scale-down", MetricCPU, 4, 100, cpuPods([]int64{400, 95, -1, -1}), 3, 24},
		{"missing metrics count as 0% on scale-up", MetricCPU, 4, 50, cpuPods([]int64{1500, 1500, -1, -1}), 6, 150},
		{"missing metrics that reverse the direction keep the count", MetricCPU, 4, 50, cpuPods([]int64{1000, 1000, -1, -1}), 4, 100},
		{"unready pods are ignored on scale-down", MetricCPU, 3, 50, cpuPods([]int64{100, 100, 900}, 2), 1, 10},
		{"concurrency: ceil(2 × 4/2)", MetricConcurrency, 2, 2000, []ReplicaMetric{
			{Name: "a", Ready: true, HasValue: true, Value: 4}, {Name: "b", Ready: true, HasValue: true, Value: 4}}, 4, 4000},
		{"concurrency: unready replicas with a value still count (plain metric)", MetricConcurrency, 2, 2000, []ReplicaMetric{
			{Name: "a", Ready: true, HasValue: true, Value: 4}, {Name: "b", Ready: false, HasValue: true, Value: 0}}, 2, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CalcReplicas(tt.kind, tt.current, tt.target, tt.metrics, DefaultTolerance)
			if err != nil {
				t.Fatal(err)
			}
			if p.Replicas != tt.want || p.Utilization != tt.wantUtil {
				t.Errorf("got %d replicas at %d, want %d at %d", p.Replicas, p.Utilization, tt.want, tt.wantUtil)
			}
		})
	}
}

func TestCalcReplicasWithoutMetricsIsAnError(t *testing.T) {
	_, err := CalcReplicas(MetricCPU, 2, 70, cpuPods([]int64{-1, -1}), DefaultTolerance)
	if !errors.Is(err, ErrNoMetrics) {
		t.Fatalf("got %v, want ErrNoMetrics", err)
	}
}

func i32(v int32) *int32 { return &v }

func newTestAutoscaler(t *testing.T, spec v1alpha1.Autoscaling) (*Autoscaler, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a, err := NewAutoscaler(&spec, clk)
	if err != nil {
		t.Fatal(err)
	}
	return a, clk
}

// uniform returns n ready replicas each at util percent of a 1000m request.
func uniform(n int, util int64) []ReplicaMetric {
	u := make([]int64, n)
	for i := range u {
		u[i] = util * 10
	}
	return cpuPods(u)
}

type step struct {
	after   time.Duration // clock advance before this sync
	current int32
	metrics []ReplicaMetric
	want    int32
	reason  string
}

func runSteps(t *testing.T, a *Autoscaler, clk *clocktesting.FakeClock, steps []step) {
	t.Helper()
	for i, s := range steps {
		clk.Step(s.after)
		d, err := a.Decide(s.current, s.metrics)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if d.Desired != s.want || (s.reason != "" && d.Reason != s.reason) {
			t.Fatalf("step %d: from %d got %d (%s), want %d (%s)", i, s.current, d.Desired, d.Reason, s.want, s.reason)
		}
	}
}

func TestAutoscalerDefaultScaleUpPolicyIsMaxOf100PercentAnd4Pods(t *testing.T) {
	a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 20, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(10)}})
	runSteps(t, a, clk, []step{
		// proposal ceil(1 × 100/10) = 10; limit max(ceil(1×2), 1+4) = 5.
		{0, 1, uniform(1, 100), 5, "ScaleUpLimit"},
		// 5 s later the period still holds the +4: start 1, limit 5.
		{5 * time.Second, 5, uniform(5, 20), 5, "ScaleUpLimit"},
		// after 15 s the period is clear: limit max(10, 9) = 10.
		{11 * time.Second, 5, uniform(5, 20), 10, "DesiredWithinRange"},
		// maxReplicas bounds the result.
		{16 * time.Second, 10, uniform(10, 100), 20, "TooManyReplicas"},
		{16 * time.Second, 20, uniform(20, 100), 20, ""},
	})
}

func TestAutoscalerScaleDownStabilisationKeepsTheHighestRecentRecommendation(t *testing.T) {
	a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(50)}})
	runSteps(t, a, clk, []step{
		{0, 4, uniform(4, 50), 4, ""},
		// load drops: proposal 1, but 4 was recommended within 300 s.
		{60 * time.Second, 4, uniform(4, 10), 4, "ScaleDownStabilized"},
		{200 * time.Second, 4, uniform(4, 10), 4, "ScaleDownStabilized"},
		// 301 s after the last "4": the window holds only 1s.
		{41 * time.Second, 4, uniform(4, 10), 1, "DesiredWithinRange"},
	})
}

func TestAutoscalerBehaviourPolicies(t *testing.T) {
	zero := i32(0)
	t.Run("Pods policy limits scale-down to 1 per 60 s", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(50)},
			Behavior: &v1alpha1.ScalingBehavior{ScaleDown: &v1alpha1.ScalingRules{StabilizationWindowSeconds: zero,
				Policies: []v1alpha1.HPAScalingPolicy{{Type: "Pods", Value: 1, PeriodSeconds: 60}}}}})
		runSteps(t, a, clk, []step{
			{0, 5, uniform(5, 5), 4, "ScaleDownLimit"},
			{30 * time.Second, 4, uniform(4, 5), 4, "ScaleDownLimit"},
			{31 * time.Second, 4, uniform(4, 5), 3, "ScaleDownLimit"},
		})
	})
	t.Run("Percent policy halves at most per period", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(50)},
			Behavior: &v1alpha1.ScalingBehavior{ScaleDown: &v1alpha1.ScalingRules{StabilizationWindowSeconds: zero,
				Policies: []v1alpha1.HPAScalingPolicy{{Type: "Percent", Value: 50, PeriodSeconds: 60}}}}})
		runSteps(t, a, clk, []step{{0, 10, uniform(10, 5), 5, "ScaleDownLimit"}})
	})
	t.Run("selectPolicy Min picks the smaller scale-up", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(10)},
			Behavior: &v1alpha1.ScalingBehavior{ScaleUp: &v1alpha1.ScalingRules{SelectPolicy: "Min"}}})
		// policies default to 100% and 4 pods per 15 s: min(4, 6) = 4.
		runSteps(t, a, clk, []step{{0, 2, uniform(2, 100), 4, "ScaleUpLimit"}})
	})
	t.Run("selectPolicy Disabled never scales down", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(50)},
			Behavior: &v1alpha1.ScalingBehavior{ScaleDown: &v1alpha1.ScalingRules{StabilizationWindowSeconds: zero, SelectPolicy: "Disabled"}}})
		runSteps(t, a, clk, []step{{0, 3, uniform(3, 1), 3, ""}})
	})
	t.Run("scale-up stabilisation takes the lowest recent recommendation", func(t *testing.T) {
		a, clk := newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 10, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(50)},
			Behavior: &v1alpha1.ScalingBehavior{ScaleUp: &v1alpha1.ScalingRules{StabilizationWindowSeconds: i32(60)}}})
		runSteps(t, a, clk, []step{
			{0, 2, uniform(2, 50), 2, ""},
			{10 * time.Second, 2, uniform(2, 100), 2, "ScaleUpStabilized"},
			{51 * time.Second, 2, uniform(2, 100), 4, "DesiredWithinRange"},
		})
	})
}

func TestAutoscalerClampsToMinAndMaxAndWritesTheEventMessage(t *testing.T) {
	a, _ := newTestAutoscaler(t, v1alpha1.Autoscaling{MinReplicas: i32(2), MaxReplicas: 3, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(70)}})
	if d, _ := a.Decide(5, nil); d.Desired != 3 {
		t.Errorf("above max: got %d, want 3", d.Desired)
	}
	if d, _ := a.Decide(1, nil); d.Desired != 2 {
		t.Errorf("below min: got %d, want 2", d.Desired)
	}
	a, _ = newTestAutoscaler(t, v1alpha1.Autoscaling{MaxReplicas: 4, Target: v1alpha1.AutoscalingTarget{CPUUtilization: i32(70)}})
	d, err := a.Decide(1, uniform(1, 142))
	if err != nil {
		t.Fatal(err)
	}
	want := "scaled from 1 to 3: cpu utilisation 142% of request, target 70%"
	if d.Desired != 3 || d.Message != want || d.Metric != "cpu 142% / 70%" {
		t.Errorf("got %d %q %q, want 3 %q", d.Desired, d.Message, d.Metric, want)
	}
}
