package e2e

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `petrel logs --timestamps` and `--since` on the local engine, as
// kubectl's: each line carries the time it was written, and --since keeps
// the lines of the last N seconds.
func TestLogsTimestampsAndSinceLocally(t *testing.T) {
	e := newEnv(t)
	spec := e.write("stamps.yaml", jobYAML("stamps", "", "sh", "-c", "echo early; sleep 8; echo late"))
	if r := e.petrel("train", "-f", spec); r.code != 0 {
		t.Fatalf("train: %s", r.stderr)
	}
	r := e.petrel("logs", "stamps", "--timestamps")
	if r.code != 0 {
		t.Fatalf("logs --timestamps: %s", r.stderr)
	}
	at := map[string]time.Time{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		// [attempt 0] 2026-12-05T05:40:01.123456789Z early
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Fatalf("line %q: want [attempt 0] TIME TEXT", l)
		}
		ts, err := time.Parse(time.RFC3339Nano, f[2])
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		at[f[3]] = ts
	}
	gap := at["late"].Sub(at["early"])
	if gap < 7*time.Second || gap > 60*time.Second {
		t.Fatalf("early at %s, late at %s: %s apart, want the 8 s the job slept", at["early"], at["late"], gap)
	}
	// A threshold 4 s before "late" (whole seconds, as --since takes).
	since := int(math.Ceil(time.Since(at["late"]).Seconds())) + 4
	r = e.petrel("logs", "stamps", "--since", strconv.Itoa(since)+"s")
	if r.code != 0 || !strings.Contains(r.stdout, "late") || strings.Contains(r.stdout, "early") {
		t.Fatalf("logs --since %ds: code %d\n%s%s\nwant only the late line", since, r.code, r.stdout, r.stderr)
	}
}
