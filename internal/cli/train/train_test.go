package train

import (
	"testing"

	"github.com/petrel-dev/petrel/internal/backend"
)

func TestNoPendingLineBetweenASucceededAttemptAndComplete(t *testing.T) {
	ok := backend.Attempt{Index: 0, Name: "j-0", Phase: "Succeeded"}
	failed := backend.Attempt{Index: 0, Name: "j-0", Phase: "Failed"}
	for _, tc := range []struct {
		name string
		job  backend.Job
		want bool
	}{
		{"after a succeeded attempt", backend.Job{Phase: backend.JobPending, Attempts: []backend.Attempt{ok}}, true},
		{"before the first attempt", backend.Job{Phase: backend.JobPending}, false},
		{"backing off after a failure", backend.Job{Phase: backend.JobPending, Attempts: []backend.Attempt{failed}}, false},
		{"complete", backend.Job{Phase: backend.JobComplete, Attempts: []backend.Attempt{ok}}, false},
	} {
		if got := settling(&tc.job); got != tc.want {
			t.Errorf("%s: settling = %v, want %v", tc.name, got, tc.want)
		}
	}
}
