package serving

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// Real replicas under a load far above target, with no behavior: every
// rescale stays within the HPA controller's legacy limit max(2 × from, 4)
// (normalizeDesiredReplicas) and the limit binds on the way up. With the
// autoscaling/v2 behavior defaults the first step would be 1 → 5.
func TestServiceWithoutBehaviorScalesUpAtMostMax2xOr4PerSync(t *testing.T) {
	spec := testSpec(t.TempDir(), 1)
	spec.Replicas = nil
	const maxReplicas = 8
	spec.Autoscaling = &v1alpha1.Autoscaling{MaxReplicas: maxReplicas, Target: v1alpha1.AutoscalingTarget{Concurrency: ptr[int32](1)}}
	s := startService(t, Config{Spec: spec, SyncPeriod: time.Second})
	waitFor(t, s, 20*time.Second, "first replica ready", func(st backend.Service) bool { return st.ReadyReplicas == 1 })
	load := startLoad(s.URL()+"/sleep?ms=100", http.MethodGet, 24)
	defer load.Stop()
	st := waitFor(t, s, 30*time.Second, "scale-up to maxReplicas", func(st backend.Service) bool { return st.DesiredReplicas == maxReplicas })

	limited := 0
	from := int32(1) // each event gives the new size; the first scale-up starts at 1
	for _, e := range st.Events {
		if e.Reason != "SuccessfulRescale" {
			continue
		}
		var to int32
		if _, err := fmt.Sscanf(e.Message, "New size: %d;", &to); err != nil {
			t.Fatalf("rescale event %q: %v", e.Message, err)
		}
		limit := max(2*from, 4)
		if to > limit {
			t.Errorf("%q: above the legacy limit max(2 × %d, 4) = %d", e.Message, from, limit)
		}
		if to == limit {
			limited++
		}
		from = to
	}
	if limited == 0 {
		t.Errorf("no rescale reached the legacy limit under a load 24× the target:%s", eventLines(st))
	}
}
