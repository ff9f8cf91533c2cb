package engine

import (
	"context"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/spec"
)

// BenchmarkEngineTrue is the in-process part of `petrel train` of `true`:
// apply (replacing the finished run) and wait until the job completes.
func BenchmarkEngineTrue(b *testing.B) {
	e, err := New(Config{Home: b.TempDir(), GPUs: FakeGPUs(0), ShimArgv: []string{testBinary(), "-shim"}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	j := job("t", "true")
	docs := []*spec.Document{{File: "t.yaml", Object: j, Dir: b.TempDir()}}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		time.Sleep(200 * time.Millisecond) // the spare shim is ready, as between two user commands
		b.StartTimer()
		start := time.Now()
		if _, err := e.ApplyReplace(ctx, docs); err != nil {
			b.Fatal(err)
		}
		applied := time.Since(start)
		ch, _ := e.WatchJob(ctx, "t")
		for range ch {
		}
		if i == b.N-1 {
			b.ReportMetric(float64(applied.Microseconds()), "µs-apply")
		}
	}
}
