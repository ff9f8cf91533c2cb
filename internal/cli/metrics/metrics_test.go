package metrics

import (
	"reflect"
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

func pts(attempt int, pairs ...any) []backend.MetricPoint {
	var out []backend.MetricPoint
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, backend.MetricPoint{Attempt: attempt, Name: pairs[i].(string), Value: pairs[i+1].(float64)})
	}
	return out
}

func TestOneRowPerStepAndOnlyTheSpecsMetrics(t *testing.T) {
	var in []backend.MetricPoint
	in = append(in, pts(0, "CUDA_VISIBLE_DEVICES", 0.0)...)
	in = append(in, pts(0, "epoch", 1.0, "loss", 0.9, "accuracy", 0.5)...)
	in = append(in, pts(0, "epoch", 2.0, "loss", 0.5, "accuracy", 0.8)...)
	in = append(in, pts(1, "epoch", 1.0, "loss", 0.7)...)

	steps, names := Steps(in, []string{"epoch", "loss", "accuracy"})
	if !reflect.DeepEqual(names, []string{"epoch", "loss", "accuracy"}) {
		t.Errorf("names = %v", names)
	}
	want := []Step{
		{0, map[string]float64{"epoch": 1, "loss": 0.9, "accuracy": 0.5}},
		{0, map[string]float64{"epoch": 2, "loss": 0.5, "accuracy": 0.8}},
		{1, map[string]float64{"epoch": 1, "loss": 0.7}},
	}
	if !reflect.DeepEqual(steps, want) {
		t.Errorf("steps = %v, want %v", steps, want)
	}

	// Without spec.metrics every pair counts: the stray one becomes a
	// column (points carry no line number, so it shares the next row).
	all, names := Steps(in, nil)
	if len(all) != 3 || names[0] != "CUDA_VISIBLE_DEVICES" || all[0].Metrics["CUDA_VISIBLE_DEVICES"] != 0 {
		t.Errorf("without spec.metrics every pair counts: %d rows, names %v", len(all), names)
	}
}
