package serving

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// healthServer answers "NAME" on / and 200 on /ready until made unhealthy.
func healthServer(t *testing.T, name string) (*httptest.Server, *atomic.Bool) {
	t.Helper()
	var sick atomic.Bool
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, name) //nolint:errcheck
	}))
	t.Cleanup(s.Close)
	return s, &sick
}

func openRemote(t *testing.T, dir, addr string) *RemoteBalancer {
	t.Helper()
	rb, err := OpenRemoteBalancer(RemoteConfig{Service: "svc", Dir: dir, Addr: addr, Argv: []string{os.Args[0], "-lb"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

// hits sends n GETs to base and counts the answers by body ("!CODE" for a
// status other than 200, "!err" for a failed request).
func hits(base string, n int) map[string]int {
	got := map[string]int{}
	for range n {
		resp, err := http.Get(base + "/")
		if err != nil {
			got["!err"]++
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			got["!"+resp.Status[:3]]++
			continue
		}
		got[string(b)]++
	}
	return got
}

func probeOf(s *httptest.Server) *ProbeSpec {
	return &ProbeSpec{URL: s.URL + "/ready", Period: 200 * time.Millisecond, Timeout: time.Second, FailureThreshold: 2, SuccessThreshold: 1}
}

// The load-balancer process outlives its controller: detached, it keeps
// routing, takes a replica whose readiness probe fails out of rotation on
// its own, and a new controller adopts it with that readiness on the same
// address. Close stops it and frees the port.
func TestRemoteBalancerKeepsRoutingAndProbingWithoutItsController(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lb")
	a, _ := healthServer(t, "a")
	b, bSick := healthServer(t, "b")
	rb := openRemote(t, dir, "127.0.0.1:0")
	for _, s := range []struct {
		name string
		srv  *httptest.Server
	}{{"a", a}, {"b", b}} {
		u, _ := url.Parse(s.srv.URL)
		rb.AddEndpoint(s.name, u, probeOf(s.srv))
		rb.SetReady(s.name, true)
	}
	base := rb.URL()
	if got := hits(base, 20); got["a"] == 0 || got["b"] == 0 || got["a"]+got["b"] != 20 {
		t.Fatalf("with both ready: %v, want both a and b and nothing else", got)
	}
	rb.Detach()

	// The controller is gone; b turns unhealthy. After DefaultAwayAfter
	// the process's own probes take b out.
	bSick.Store(true)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := hits(base, 10)
		if got["a"] == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b was never taken out of rotation by the process's own probe: %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	rb2 := openRemote(t, dir, "127.0.0.1:0") // a new controller adopts it
	if rb2.URL() != base {
		t.Errorf("adopted balancer serves %s, want %s as before", rb2.URL(), base)
	}
	if !rb2.IsReady("a") || rb2.IsReady("b") {
		t.Errorf("adopted readiness a=%v b=%v, want a ready and b not", rb2.IsReady("a"), rb2.IsReady("b"))
	}
	if err := rb2.Close(); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(base, "http://")
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still held after Close: %v", err)
	}
	l.Close()
}

// A load-balancer process that dies while its controller runs is started
// again on the same address with the same endpoints.
func TestRemoteBalancerRestartsAKilledProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lb")
	a, _ := healthServer(t, "a")
	rb := openRemote(t, dir, "127.0.0.1:0")
	t.Cleanup(func() { rb.Close() }) //nolint:errcheck
	u, _ := url.Parse(a.URL)
	rb.AddEndpoint("a", u, probeOf(a))
	rb.SetReady("a", true)
	events := make(chan string, 10)
	rb.SetEventRecorder(func(typ, reason, msg string) { events <- typ + " " + reason + ": " + msg })
	rep, err := rb.state(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(rep.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got := hits(rb.URL(), 1); got["a"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed load balancer was not started again")
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep2, err := rb.state(time.Second)
	if err != nil || rep2.Pid == rep.Pid || rep2.Addr != rep.Addr {
		t.Fatalf("after the kill: pid %d (was %d), addr %s (was %s), err %v; want a new process on the same address", rep2.Pid, rep.Pid, rep2.Addr, rep.Addr, err)
	}
	select {
	case ev := <-events:
		if !strings.HasPrefix(ev, "Warning LoadBalancerRestarted: ") || !strings.Contains(ev, rep.Addr) {
			t.Errorf("event %q, want a LoadBalancerRestarted warning naming %s", ev, rep.Addr)
		}
	case <-time.After(10 * time.Second):
		t.Error("the restart was not recorded as an event")
	}
}

// The load-balancer process runs with the server's environment plus
// lbSchedtrace in GODEBUG (keeping what the user set there), so the
// runtime's sysmon does not park between bursts of requests.
func TestLoadBalancerProcessKeepsGODEBUGAndAddsSchedtrace(t *testing.T) {
	t.Setenv("GODEBUG", "madvdontneed=1")
	rb := openRemote(t, filepath.Join(t.TempDir(), "lb"), "127.0.0.1:0")
	defer rb.Close() //nolint:errcheck
	rep, err := rb.state(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(rep.Pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range strings.Split(string(env), "\x00") {
		if strings.HasPrefix(kv, "GODEBUG=") {
			got = append(got, kv)
		}
	}
	if want := "GODEBUG=madvdontneed=1," + lbSchedtrace; len(got) != 1 || got[0] != want {
		t.Errorf("load balancer's GODEBUG = %q, want [%q]", got, want)
	}
	if e := lbEnv([]string{"GODEBUG=schedtrace=5"}); e[0] != "GODEBUG=schedtrace=5" {
		t.Errorf("a schedtrace the user set was replaced: %q", e)
	}
}
