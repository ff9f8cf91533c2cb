package serving

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLBCollectorCountsRequestsByCodeAndReportsInFlightPerReplica(t *testing.T) {
	a := newNamedServer(t, "a")
	lb := startLB(t, map[string]*namedServer{"a": a}, "a")
	get := func(path string) {
		resp, err := http.Get(lb.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for i := 0; i < 5; i++ {
		get("/")
	}
	held := make(chan struct{}) // one request held in flight at the replica
	go func() {
		defer close(held)
		if resp, err := http.Get(lb.URL() + "/?block"); err == nil {
			resp.Body.Close()
		}
	}()
	<-a.entered
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(LBCollector())
	want := `
# HELP petrel_lb_inflight_requests Requests the service's load balancer has sent to a replica that have not finished.
# TYPE petrel_lb_inflight_requests gauge
petrel_lb_inflight_requests{replica="a",service="test"} 1
# HELP petrel_lb_requests_total Requests the service's load balancer answered, by HTTP status code.
# TYPE petrel_lb_requests_total counter
petrel_lb_requests_total{code="200",service="test"} 5
`
	// The balancer counts a request once its response is on the way to
	// the client, so the last GET can return a moment before its count
	// and in-flight decrement land: wait for them, with a deadline.
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err = testutil.GatherAndCompare(reg, strings.NewReader(want), MetricLBInFlight, MetricLBRequests); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(LBCollector(), MetricLBDuration); n != 1 {
		t.Errorf("%d duration histograms, want 1 for the one service", n)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	close(a.release)
	<-held
	lb.Close()
	if n := testutil.CollectAndCount(LBCollector(), MetricLBRequests); n != 0 {
		t.Errorf("a closed load balancer still reports %d series", n)
	}
}

// BenchmarkLBObserve is what the metrics add to each proxied request.
func BenchmarkLBObserve(b *testing.B) {
	m := newLBMetrics("bench")
	for b.Loop() {
		m.observe(http.StatusOK, 1500*time.Microsecond)
	}
}
