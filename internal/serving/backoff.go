package serving

import "time"

// The kubelet's container restart back-off (Kubernetes v1.37.2):
// DefaultBackOffInitial is initialCrashLoopBackOff (10 s) and
// DefaultBackOffMax is MaxContainerBackOff (300 s), both in
// pkg/kubelet/kubelet.go (newCrashLoopBackOff); DefaultBackOffReset is the
// 600 s of the kubelet's crashLoopBackOff.HasExpiredFunc, which equals
// flowcontrol.Backoff's default expiry of 2 × the cap.
const (
	DefaultBackOffInitial = 10 * time.Second
	DefaultBackOffMax     = 300 * time.Second
	DefaultBackOffReset   = 10 * time.Minute
)

// CrashLoopBackOff decides how long a replica that exited waits before it
// is restarted, as the kubelet's per-container back-off does
// (kuberuntime's doBackOff over a client-go flowcontrol.Backoff entry).
//
// The first exit restarts at once; each following exit waits Initial,
// doubling up to Max ("CrashLoopBackOff"), counted from the exit. The
// entry's lastUpdate is the time of the restart it allowed — the kubelet
// calls Backoff.Next when it starts the container again — so a replica
// that ran for more than Reset since its last start (its exit time minus
// lastUpdate > Reset) is out of the crash loop: it restarts at once and
// the next exit waits Initial again. A replica at the 5 min cap that runs
// 6 min therefore still waits 5 min. The zero value uses the kubelet's
// 10 s / 5 min / 10 min.
type CrashLoopBackOff struct {
	Initial, Max, Reset time.Duration

	// delay is flowcontrol's entry.backoff: the wait the next exit gets,
	// 0 while there is no entry.
	delay time.Duration
	// lastUpdate is flowcontrol's entry.lastUpdate: when the last restart
	// was allowed (exit time + its wait), i.e. the replica's last start.
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
// exitedAt (the container's finishedAt), and advances the back-off as the
// kubelet does when it then restarts it: with no entry, or one that
// expired (exitedAt − last start > Reset), the restart is immediate and
// the entry starts at Initial; otherwise the wait is the entry's delay,
// which then doubles up to Max. The restart is taken to happen at
// exitedAt + wait; that is the start the next expiry is measured from.
func (b *CrashLoopBackOff) Next(exitedAt time.Time) time.Duration {
	b.defaults()
	var wait time.Duration
	if b.delay == 0 || exitedAt.Sub(b.lastUpdate) > b.Reset {
		// IsInBackOffSince is false: Backoff.Next inits the entry.
		b.delay = b.Initial
	} else {
		wait = b.delay
		b.delay = min(2*b.delay, b.Max)
	}
	b.lastUpdate = exitedAt.Add(wait)
	return wait
}
