package engine

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/katib"
)

// metricsTail reads an attempt's log file incrementally and turns complete
// lines into metric points.
type metricsTail struct {
	path string
	// only, when set, is the prefix of the lines that carry metrics (a
	// distributed attempt's worker 0, "[worker 0] "); other lines are not
	// read for metrics.
	only string
	mu   sync.Mutex
	off  int64
	part []byte
	pts  []backend.MetricPoint
	done chan struct{}
	once sync.Once
}

func newMetricsTail(path string) *metricsTail {
	return &metricsTail{path: path, done: make(chan struct{})}
}

func (m *metricsTail) stop() { m.once.Do(func() { close(m.done) }) }

// read consumes new bytes; final treats a trailing partial line as complete.
func (m *metricsTail) read(attempt int, final bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := os.Open(m.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(m.off, io.SeekStart); err != nil {
		return
	}
	b, _ := io.ReadAll(f)
	m.off += int64(len(b))
	data := append(m.part, b...)
	now := time.Now()
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		m.addLine(attempt, string(data[:i]), now)
		data = data[i+1:]
	}
	m.part = append([]byte(nil), data...)
	if final && len(m.part) > 0 {
		m.addLine(attempt, string(m.part), now)
		m.part = nil
	}
}

func (m *metricsTail) addLine(attempt int, line string, t time.Time) {
	if m.only != "" {
		var ok bool
		if line, ok = strings.CutPrefix(line, m.only); !ok {
			return
		}
	}
	for _, kv := range katib.ParseLine(line) {
		m.pts = append(m.pts, backend.MetricPoint{Attempt: attempt, Time: t, Name: kv.Name, Value: kv.Value})
	}
}

// consumed is the log offset up to which lines were parsed (bytes).
func (m *metricsTail) consumed() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.off - int64(len(m.part))
}

func (m *metricsTail) take() []backend.MetricPoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pts
	m.pts = nil
	return p
}

// tailMetrics stores an attempt's metrics about once a second while it runs.
func (e *Engine) tailMetrics(ra *runningAttempt) {
	defer e.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ra.metrics.done:
			return
		case <-e.ctx.Done():
			return
		case <-t.C:
			ra.metrics.read(ra.index, false)
			if pts := ra.metrics.take(); len(pts) > 0 {
				e.mu.Lock()
				e.recordMetrics(ra, pts)
				e.mu.Unlock()
			}
		}
	}
}

// storeMetrics does the final read of a finished attempt. Caller holds e.mu.
func (e *Engine) storeMetrics(ra *runningAttempt) {
	ra.metrics.read(ra.index, true)
	e.recordMetrics(ra, ra.metrics.take())
}

// recordMetrics stores points with how far the log has been read, so a
// restarted server resumes reading there and loses no line.
func (e *Engine) recordMetrics(ra *runningAttempt, pts []backend.MetricPoint) {
	r, ok := e.jobs[ra.job]
	if !ok || len(pts) == 0 {
		return
	}
	if err := e.store.addMetrics(e.ctx, ra.job, pts); err != nil {
		e.cfg.Logf("store metrics of %s: %v", ra.job, err)
		return
	}
	if r.MetricsOffset == nil {
		r.MetricsOffset = map[int]int64{}
	}
	r.MetricsOffset[ra.index] = ra.metrics.consumed()
	if r.LastMetrics == nil {
		r.LastMetrics = map[string]float64{}
	}
	for _, p := range pts {
		r.LastMetrics[p.Name] = p.Value
	}
	e.persist(r)
}
