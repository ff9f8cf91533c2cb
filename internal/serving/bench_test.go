package serving

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
)

// BenchmarkLoadBalancerOverhead compares requests through the service's
// load balancer with requests sent straight to its two replicas (round
// robin), at the same concurrency. Replicas either compute for 3 ms (a
// small CPU-bound model) or wait 2 ms (an I/O-bound one). Rounds alternate
// direct and proxied so drift on a shared machine hits both. It reports
// throughput-ratio (proxied / direct), the latency added at p50 and p99 in
// microseconds, and the CPU time the load balancer costs per request
// (this process's CPU time, proxied minus direct, per request). Run:
//
//	go test -run '^$' -bench LoadBalancerOverhead -benchtime 8000x ./internal/serving/
func BenchmarkLoadBalancerOverhead(b *testing.B) {
	for _, c := range []struct {
		path string
		conc int
	}{{"/work?ms=3", 4}, {"/sleep?ms=2", 8}, {"/sleep?ms=2", 32}} {
		b.Run(fmt.Sprintf("replica=%s/concurrency=%d", c.path[1:6], c.conc), func(b *testing.B) { benchOverhead(b, c.conc, c.path) })
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru) //nolint:errcheck
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchOverhead(b *testing.B, conc int, path string) {
	spec := testSpec(b.TempDir(), 2)
	s, err := NewService(Config{Name: "bench", Spec: spec})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Delete(context.Background()) //nolint:errcheck
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	st, err := s.Wait(ctx, func(st backend.Service) bool { return st.ReadyReplicas == 2 })
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	var direct []string
	for _, r := range st.Replicas {
		direct = append(direct, fmt.Sprintf("http://127.0.0.1:%d%s", r.Port, path))
	}
	proxied := []string{s.URL() + path}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2, MaxIdleConns: conc * 4}}

	// Warm both paths (connections, goroutines).
	runRound(client, direct, conc, conc*20)
	runRound(client, proxied, conc, conc*20)

	const rounds = 4
	per := max(b.N/(2*rounds), conc)
	var dLat, pLat []time.Duration
	var dTime, pTime, dCPU, pCPU time.Duration
	b.ResetTimer()
	for range rounds {
		c0 := cpuTime()
		lat, el := runRound(client, direct, conc, per)
		c1 := cpuTime()
		dLat, dTime, dCPU = append(dLat, lat...), dTime+el, dCPU+c1-c0
		lat, el = runRound(client, proxied, conc, per)
		pLat, pTime, pCPU = append(pLat, lat...), pTime+el, pCPU+cpuTime()-c1
	}
	b.StopTimer()
	dRate := float64(len(dLat)) / dTime.Seconds()
	pRate := float64(len(pLat)) / pTime.Seconds()
	b.ReportMetric(pRate/dRate, "throughput-ratio")
	b.ReportMetric(dRate, "direct-req/s")
	b.ReportMetric(pRate, "lb-req/s")
	b.ReportMetric(float64(pct(pLat, 50)-pct(dLat, 50))/1e3, "added-p50-µs")
	b.ReportMetric(float64(pct(pLat, 99)-pct(dLat, 99))/1e3, "added-p99-µs")
	b.ReportMetric(float64(pCPU-dCPU)/float64(len(pLat))/1e3, "lb-cpu-µs/req")
	b.ReportMetric(0, "ns/op")
}

// runRound sends n GETs from conc workers spread over urls and returns
// each request's latency and the elapsed time. A failed request panics:
// a benchmark with errors measures nothing.
func runRound(client *http.Client, urls []string, conc, n int) ([]time.Duration, time.Duration) {
	var next atomic.Int64
	lats := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				resp, err := client.Get(urls[i%len(urls)])
				if err != nil {
					panic(err)
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode != 200 {
					panic(fmt.Sprintf("status %d", resp.StatusCode))
				}
				lats[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	return lats, time.Since(start)
}

func pct(lats []time.Duration, p int) time.Duration {
	s := slices.Clone(lats)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
