package serving

import (
	"testing"
	"time"
)

func TestCrashLoopBackOffDoublesFrom10sTo5MinAndResets(t *testing.T) {
	var b CrashLoopBackOff
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	var got []time.Duration
	for i := 0; i < 8; i++ {
		w := b.Next(now)
		got = append(got, w)
		now = now.Add(w + time.Second) // restarted, crashed a second later
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
	}
	// A replica that then runs for more than 10 minutes starts over.
	if w := b.Next(now.Add(11 * time.Minute)); w != 0 {
		t.Fatalf("after 11 min of running the wait is %v, want 0", w)
	}
	if w := b.Next(now.Add(11*time.Minute + time.Second)); w != 10*time.Second {
		t.Fatalf("second crash after the reset waits %v, want 10s", w)
	}
}
