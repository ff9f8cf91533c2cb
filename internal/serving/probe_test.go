package serving

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flipServer answers its current status code and counts probes.
type flipServer struct {
	*httptest.Server
	code   atomic.Int32
	probes atomic.Int32
}

func newFlipServer(t *testing.T, code int) *flipServer {
	f := &flipServer{}
	f.code.Store(int32(code))
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.probes.Add(1)
		w.WriteHeader(int(f.code.Load()))
	}))
	t.Cleanup(f.Close)
	return f
}

type probeLog struct {
	mu     sync.Mutex
	ready  []bool
	kills  []string
	events []string
	change chan struct{}
}

func (l *probeLog) hooks() ProbeHooks {
	note := func() {
		select {
		case l.change <- struct{}{}:
		default:
		}
	}
	return ProbeHooks{
		Ready: func(r bool) { l.mu.Lock(); l.ready = append(l.ready, r); l.mu.Unlock(); note() },
		Kill:  func(reason, _ string) { l.mu.Lock(); l.kills = append(l.kills, reason); l.mu.Unlock(); note() },
		Event: func(_, reason, msg string) { l.mu.Lock(); l.events = append(l.events, reason+": "+msg); l.mu.Unlock() },
	}
}

func (l *probeLog) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-l.change:
		case <-deadline:
			t.Fatalf("%s: ready %v kills %v events %v", what, l.ready, l.kills, l.events)
		}
	}
}

func fastProbe(url string, fail, succ int) *ProbeSpec {
	return &ProbeSpec{URL: url, Period: 20 * time.Millisecond, Timeout: time.Second, FailureThreshold: fail, SuccessThreshold: succ}
}

func TestProberReadinessFollowsThresholds(t *testing.T) {
	srv := newFlipServer(t, 200)
	l := &probeLog{change: make(chan struct{}, 1)}
	p := &Prober{Readiness: fastProbe(srv.URL, 3, 2), Hooks: l.hooks()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, time.Now())
	l.waitFor(t, "ready after two successes", func() bool { return len(l.ready) == 1 && l.ready[0] })
	if n := srv.probes.Load(); n < 2 {
		t.Fatalf("ready after %d probes, successThreshold is 2", n)
	}
	srv.code.Store(503)
	before := srv.probes.Load()
	l.waitFor(t, "not ready after three failures", func() bool { return len(l.ready) == 2 && !l.ready[1] })
	if n := srv.probes.Load() - before; n < 3 {
		t.Fatalf("not ready after %d failed probes, failureThreshold is 3", n)
	}
	if len(l.kills) != 0 {
		t.Fatalf("a readiness failure killed the replica: %v", l.kills)
	}
}

func TestProberStartupGatesReadinessAndLivenessKills(t *testing.T) {
	startup := newFlipServer(t, 500)
	ready := newFlipServer(t, 200)
	live := newFlipServer(t, 200)
	l := &probeLog{change: make(chan struct{}, 1)}
	p := &Prober{Startup: fastProbe(startup.URL, 1000, 1), Readiness: fastProbe(ready.URL, 3, 1), Liveness: fastProbe(live.URL, 2, 1), Hooks: l.hooks()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { p.Run(ctx, time.Now()); close(done) }()
	time.Sleep(150 * time.Millisecond) // several startup periods
	if ready.probes.Load() != 0 || live.probes.Load() != 0 {
		t.Fatalf("readiness (%d) or liveness (%d) probed before the startup probe succeeded", ready.probes.Load(), live.probes.Load())
	}
	startup.code.Store(200)
	l.waitFor(t, "ready once started", func() bool { return len(l.ready) == 1 && l.ready[0] })
	live.code.Store(500)
	l.waitFor(t, "killed after two liveness failures", func() bool { return len(l.kills) == 1 })
	if l.kills[0] != "LivenessProbeFailed" {
		t.Fatalf("kill reason %q", l.kills[0])
	}
	select {
	case <-done: // probing stops after a liveness kill, until the restart
	case <-time.After(5 * time.Second):
		t.Fatal("the prober kept running after the liveness kill")
	}
}
