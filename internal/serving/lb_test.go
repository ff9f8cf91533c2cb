package serving

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// namedServer is a real HTTP server that answers its name and counts hits;
// requests with ?block wait until release is closed.
type namedServer struct {
	*httptest.Server
	hits    atomic.Int64
	conns   atomic.Int64
	release chan struct{}
	entered chan struct{}
}

func newNamedServer(t *testing.T, name string) *namedServer {
	t.Helper()
	s := &namedServer{release: make(chan struct{}), entered: make(chan struct{}, 100)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.URL.Query().Has("block") {
			s.entered <- struct{}{}
			<-s.release
		}
		io.WriteString(w, name)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(func() {
		select {
		case <-s.release:
		default:
			close(s.release)
		}
		s.Close()
	})
	return s
}

func startLB(t *testing.T, servers map[string]*namedServer, ready ...string) *LoadBalancer {
	t.Helper()
	lb := NewLoadBalancer("test")
	if _, err := lb.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	for name, s := range servers {
		u, _ := url.Parse(s.URL)
		lb.Add(name, u)
	}
	for _, n := range ready {
		lb.SetReady(n, true)
	}
	return lb
}

func get(t *testing.T, rawURL string) (int, string) {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// getQuiet sends a GET from a background goroutine, where a failure
// during cleanup must not fail the test.
func getQuiet(rawURL string) {
	if resp, err := http.Get(rawURL); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestLoadBalancerRoutesOnlyToReadyEndpoints(t *testing.T) {
	a, b := newNamedServer(t, "a"), newNamedServer(t, "b")
	lb := startLB(t, map[string]*namedServer{"a": a, "b": b}, "a")
	for i := 0; i < 20; i++ {
		if code, body := get(t, lb.URL()+"/"); code != 200 || body != "a" {
			t.Fatalf("request %d: %d %q, want 200 from a", i, code, body)
		}
	}
	if b.hits.Load() != 0 {
		t.Fatalf("the unready endpoint got %d requests", b.hits.Load())
	}
	lb.SetReady("b", true)
	for i := 0; i < 20; i++ {
		get(t, lb.URL()+"/")
	}
	if b.hits.Load() == 0 {
		t.Fatal("the endpoint got no requests after becoming ready")
	}
}

func TestLoadBalancerAnswers503WithJSONWhenNothingIsReady(t *testing.T) {
	a := newNamedServer(t, "a")
	lb := startLB(t, map[string]*namedServer{"a": a})
	code, body := get(t, lb.URL()+"/v2/health/ready")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", code)
	}
	var e map[string]string
	if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e["error"], "no ready replica") || e["fix"] == "" {
		t.Fatalf("body %q is not the JSON error with a fix", body)
	}
}

func TestLoadBalancerPrefersTheEndpointWithFewestOutstandingRequests(t *testing.T) {
	a, b := newNamedServer(t, "a"), newNamedServer(t, "b")
	lb := startLB(t, map[string]*namedServer{"a": a, "b": b}, "a", "b")
	// Hold one request in flight, wherever it lands.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); get(t, lb.URL()+"/?block") }()
	var busy, free *namedServer
	select {
	case <-a.entered:
		busy, free = a, b
	case <-b.entered:
		busy, free = b, a
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked request never arrived")
	}
	before := busy.hits.Load()
	for i := 0; i < 10; i++ {
		get(t, lb.URL()+"/")
	}
	if busy.hits.Load() != before || free.hits.Load() != 10 {
		t.Fatalf("busy endpoint got %d more, free got %d; want 0 and 10", busy.hits.Load()-before, free.hits.Load())
	}
	if got := lb.Get(map[*namedServer]string{a: "a", b: "b"}[busy]).InFlight(); got != 1 {
		t.Fatalf("in-flight count of the busy endpoint is %d, want 1", got)
	}
	close(busy.release)
	wg.Wait()
}

// A connection refused means nothing reached the replica: every request,
// POST included, goes to another ready replica, and the refusing one is
// passed over for a while instead of drawing traffic with its empty
// in-flight count (a replica that died before any probe noticed).
func TestLoadBalancerSendsRefusedRequestsToAnotherReplica(t *testing.T) {
	good := newNamedServer(t, "good")
	lb := startLB(t, map[string]*namedServer{"good": good})
	// A ready endpoint whose port refuses connections.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL, _ := url.Parse("http://" + l.Addr().String())
	l.Close()
	lb.Add("dead", deadURL)
	lb.SetReady("dead", true)
	lb.SetReady("good", true)

	for i := 0; i < 20; i++ {
		resp, err := http.Post(lb.URL()+"/infer", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "good" {
			t.Fatalf("POST %d: %d %q, want 200 from the good replica", i, resp.StatusCode, b)
		}
		if code, body := get(t, lb.URL()+"/"); code != 200 || body != "good" {
			t.Fatalf("GET %d: %d %q, want 200 from the good replica", i, code, body)
		}
	}
	if got := good.hits.Load(); got != 40 {
		t.Errorf("good endpoint got %d requests, want all 40", got)
	}
	if e := lb.Get("dead"); e.refusedAt.Load() == 0 {
		t.Error("the refusing endpoint was never tried: the test proves nothing")
	}
}

func TestLoadBalancerDrainWaitsForInFlightRequests(t *testing.T) {
	a, b := newNamedServer(t, "a"), newNamedServer(t, "b")
	lb := startLB(t, map[string]*namedServer{"a": a}, "a")
	done := make(chan string)
	go func() { _, body := get(t, lb.URL()+"/?block"); done <- body }()
	<-a.entered
	ub, _ := url.Parse(b.URL)
	lb.Add("b", ub)
	lb.SetReady("b", true)

	drained := make(chan error)
	go func() { drained <- lb.Drain(context.Background(), "a") }()
	// While draining, new requests go to b only.
	for i := 0; i < 5; i++ {
		if _, body := get(t, lb.URL()+"/"); body != "b" {
			t.Fatalf("request during drain went to %q", body)
		}
	}
	select {
	case err := <-drained:
		t.Fatalf("drain returned (%v) with a request in flight", err)
	default:
	}
	close(a.release)
	if body := <-done; body != "a" {
		t.Fatalf("in-flight request answered %q", body)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}

	// A drain bounded by a context gives up with the count.
	lb2 := startLB(t, map[string]*namedServer{"b": b}, "b")
	b2 := newNamedServer(t, "c")
	uc, _ := url.Parse(b2.URL)
	lb2.Add("c", uc)
	lb2.SetReady("b", false)
	lb2.SetReady("c", true)
	go getQuiet(lb2.URL() + "/?block")
	<-b2.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := lb2.Drain(ctx, "c"); err == nil || !strings.Contains(err.Error(), "1 requests still in flight") {
		t.Fatalf("bounded drain: got %v", err)
	}
	close(b2.release)
}

func TestLoadBalancerKeepsConnectionsToReplicasAlive(t *testing.T) {
	a := newNamedServer(t, "a")
	lb := startLB(t, map[string]*namedServer{"a": a}, "a")
	for i := 0; i < 200; i++ {
		get(t, lb.URL()+"/")
	}
	if c := a.conns.Load(); c > 2 {
		t.Fatalf("200 sequential requests opened %d connections to the replica; want keep-alive reuse", c)
	}
}

func TestLoadBalancerConcurrencySamples(t *testing.T) {
	a := newNamedServer(t, "a")
	lb := startLB(t, map[string]*namedServer{"a": a}, "a")
	if _, ok := lb.TakeConcurrency("a"); ok {
		t.Fatal("a metric exists before any sample")
	}
	go getQuiet(lb.URL() + "/?block")
	go getQuiet(lb.URL() + "/?block")
	<-a.entered
	<-a.entered
	lb.SampleInFlight()
	lb.SampleInFlight()
	v, ok := lb.TakeConcurrency("a")
	if !ok || v != 2 {
		t.Fatalf("concurrency %v %v, want 2", v, ok)
	}
	close(a.release)
}
