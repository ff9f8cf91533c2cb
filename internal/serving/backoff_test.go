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

// The kubelet measures "ran long enough" from the container's last start
// (flowcontrol.Backoff's lastUpdate is set when Next allows the restart),
// not from the previous exit: kuberuntime's doBackOff with the kubelet's
// HasExpiredFunc (exit − lastUpdate > 600 s).
func TestCrashLoopBackOffResetCountsFromTheLastStart(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// atCap returns a back-off whose replica exited at the returned time
	// with a 300 s wait, so it starts again 300 s later.
	atCap := func() (*CrashLoopBackOff, time.Time) {
		b := &CrashLoopBackOff{}
		now := t0
		for {
			w := b.Next(now)
			if w == DefaultBackOffMax {
				return b, now
			}
			now = now.Add(w + time.Second)
		}
	}
	tests := []struct {
		name string
		ran  time.Duration // running time after the restart that followed the 300 s wait
		want time.Duration
	}{
		{"ran 6 min after a 5 min wait: still in the crash loop", 6 * time.Minute, DefaultBackOffMax},
		{"ran exactly 10 min: not expired (strictly more is needed)", 10 * time.Minute, DefaultBackOffMax},
		{"ran 10 min and 1 s: restarts at once", 10*time.Minute + time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, exited := atCap()
			started := exited.Add(DefaultBackOffMax)
			if w := b.Next(started.Add(tt.ran)); w != tt.want {
				t.Fatalf("wait %v, want %v", w, tt.want)
			}
		})
	}
	t.Run("after a reset the next crash waits 10 s, then 20 s", func(t *testing.T) {
		b, exited := atCap()
		exit := exited.Add(DefaultBackOffMax + 11*time.Minute)
		if w := b.Next(exit); w != 0 {
			t.Fatalf("reset wait %v, want 0", w)
		}
		for _, want := range []time.Duration{10 * time.Second, 20 * time.Second} {
			exit = exit.Add(time.Second)
			if w := b.Next(exit); w != want {
				t.Fatalf("wait %v, want %v", w, want)
			}
			exit = exit.Add(want)
		}
	})
}
