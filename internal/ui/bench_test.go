package ui

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const benchToken = "0123456789abcdef0123456789abcdef"

func newTestServer(tb testing.TB, f *fakeBackend) *Server {
	tb.Helper()
	s, err := New(Options{Source: f, Token: benchToken})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkJobsPage1000 renders the jobs list over 1,000 jobs, server
// side, through the whole handler (token check included).
func BenchmarkJobsPage1000(b *testing.B) {
	s := newTestServer(b, &fakeBackend{jobs: manyJobs(1000)})
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/jobs", nil)
	req.Header.Set("Authorization", "Bearer "+benchToken)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /jobs: %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size)/1024, "KiB/page")
}

// streamLines serves a log of n lines, each carrying its write time,
// written every interval (0: as fast as the reader takes them) through a
// real loopback HTTP server, reads them as server-sent events, and
// returns the lag of each line from write to receipt and, when paced, the
// largest live heap seen while streaming (after a GC every 2,000 lines).
func streamLines(tb testing.TB, n int, interval time.Duration) (lags []time.Duration, heapBefore, heapMax uint64) {
	f := &fakeBackend{jobs: manyJobs(1)}
	f.logs = func(ctx context.Context, w io.Writer) error {
		next := time.Now()
		pad := strings.Repeat("x", 60)
		for i := 0; i < n; i++ {
			if interval > 0 {
				next = next.Add(interval)
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
			}
			if _, err := fmt.Fprintf(w, "%d epoch=%d loss=0.5 %s\n", time.Now().UnixNano(), i, pad); err != nil {
				return err
			}
		}
		return nil
	}
	srv := httptest.NewServer(newTestServer(tb, f).Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/jobs/job-0000/logs", nil)
	req.Header.Set("Authorization", "Bearer "+benchToken)
	lags = make([]time.Duration, 0, n)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore, heapMax = ms.HeapAlloc, ms.HeapAlloc
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		ts, _, _ := strings.Cut(line, " ")
		ns, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			break // the final "end of log"
		}
		lags = append(lags, time.Since(time.Unix(0, ns)))
		if interval > 0 && len(lags)%2000 == 0 {
			runtime.GC() // live heap, not garbage waiting for a collection
			runtime.ReadMemStats(&ms)
			heapMax = max(heapMax, ms.HeapAlloc)
		}
	}
	if len(lags) != n {
		tb.Fatalf("received %d lines, want %d", len(lags), n)
	}
	return lags, heapBefore, heapMax
}

// BenchmarkLogStream measures how many log lines per second the SSE
// stream carries when the workload prints as fast as it can.
func BenchmarkLogStream(b *testing.B) {
	b.ReportAllocs()
	start := time.Now()
	streamLines(b, b.N, 0)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s")
}

// BenchmarkLogStreamAt1000LinesPerSecond paces the workload at 1,000
// lines/s (one op = one line) and reports how far the browser's side
// falls behind (p99 and max lag from write to receipt) and how much the
// heap grew while streaming.
func BenchmarkLogStreamAt1000LinesPerSecond(b *testing.B) {
	lags, before, peak := streamLines(b, b.N, time.Millisecond)
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-lag-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-lag-ms")
	b.ReportMetric(float64(int64(peak)-int64(before))/1024, "heap-growth-KiB")
}
