package serving

import "time"

// Kubelet's container restart back-off (pkg/kubelet/kubelet.go: backOffPeriod
// 10 s, MaxContainerBackOff 300 s; an entry expires after 2 × the cap).
const (
	DefaultBackOffInitial = 10 * time.Second
	DefaultBackOffMax     = 300 * time.Second
	DefaultBackOffReset   = 10 * time.Minute
)

// CrashLoopBackOff decides how long a replica that exited waits before it
// is restarted, as the kubelet's per-container back-off does: the first
// exit restarts at once; each following exit waits Initial, doubling up to
// Max ("CrashLoopBackOff"), counted from the exit; once Reset has passed
// since the last back-off was set (a replica that ran that long), it starts
// over. The zero value uses the kubelet's 10 s / 5 min / 10 min.
type CrashLoopBackOff struct {
	Initial, Max, Reset time.Duration

	delay      time.Duration
	lastUpdate time.Time
}

func (b *CrashLoopBackOff) defaults() {
	if b.Initial == 0 {
		b.Initial = DefaultBackOffInitial
	}
	if b.Max == 0 {
		b.Max = DefaultBackOffMax
	}
	if b.Reset == 0 {
		b.Reset = DefaultBackOffReset
	}
}

// Next returns the wait before restarting a replica that exited at
// exitedAt, and advances the back-off.
func (b *CrashLoopBackOff) Next(exitedAt time.Time) time.Duration {
	b.defaults()
	if b.delay > 0 && exitedAt.Sub(b.lastUpdate) > b.Reset {
		b.delay = 0 // ran long enough: forget the crash loop
	}
	wait := b.delay
	switch {
	case b.delay == 0:
		b.delay = b.Initial
	default:
		b.delay = min(2*b.delay, b.Max)
	}
	b.lastUpdate = exitedAt
	return wait
}
