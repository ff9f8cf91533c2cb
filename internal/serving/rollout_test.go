package serving

import (
	"testing"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

func TestRollingBoundsRoundAsTheDeploymentController(t *testing.T) {
	for _, tc := range []struct {
		surge, unavail      string
		n                   int
		wantSurge, wantUnav int
	}{
		{"", "", 4, 1, 1},   // 25 % each
		{"", "", 1, 1, 0},   // surge rounds up, unavailable down
		{"1", "0", 2, 1, 0}, // serve.yaml's strategy
		{"0", "0", 3, 0, 1}, // both zero: one may be unavailable
		{"50%", "30%", 5, 3, 1},
	} {
		s := &Service{spec: v1alpha1.InferenceServiceSpec{Strategy: &v1alpha1.RollingUpdate{MaxSurge: tc.surge, MaxUnavailable: tc.unavail}}}
		if tc.surge == "" {
			s.spec.Strategy = nil
		}
		gs, gu := s.rollingBounds(tc.n)
		if gs != tc.wantSurge || gu != tc.wantUnav {
			t.Errorf("maxSurge %q maxUnavailable %q of %d: got %d/%d, want %d/%d", tc.surge, tc.unavail, tc.n, gs, gu, tc.wantSurge, tc.wantUnav)
		}
	}
}

func TestPickForDeletionRanksAsTheReplicaSetController(t *testing.T) {
	rs := []*replica{
		{index: 0, name: "old-ready", ready: true},
		{index: 1, name: "crashing", ready: true, restarts: 4},
		{index: 2, name: "new-ready", ready: true},
		{index: 3, name: "not-ready"},
	}
	got := pickForDeletion(rs, 4)
	want := []string{"not-ready", "crashing", "new-ready", "old-ready"}
	for i := range want {
		if got[i].name != want[i] {
			t.Fatalf("order %v, want %v", names(got), want)
		}
	}
}

func names(rs []*replica) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.name
	}
	return out
}
