package serving

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/logtime"
)

// Logs writes replica logs to w: one replica by index, or with replica −1
// every current replica, each line prefixed "[replica N] ". With follow it
// keeps streaming new lines until ctx ends or the replicas are gone.
// It returns an error wrapping backend.ErrNotFound for an unknown index.
func (s *Service) Logs(ctx context.Context, replica int, follow bool, w io.Writer) error {
	return s.LogsStamped(ctx, replica, follow, false, 0, w)
}

// LogsStamped is Logs with kubectl's --timestamps (each line after its
// prefix starts with the time it was written, RFC 3339 in UTC) and
// --since (sinceSeconds > 0: only lines written in the last that many
// seconds), read from each replica log's index (logtime).
func (s *Service) LogsStamped(ctx context.Context, replica int, follow, stamps bool, sinceSeconds int64, w io.Writer) error {
	s.mu.Lock()
	type target struct {
		index   int
		path    string
		removed chan struct{}
	}
	var targets []target
	for _, r := range s.replicas {
		if replica < 0 || r.index == replica {
			targets = append(targets, target{r.index, r.spec.LogPath, r.removed})
		}
	}
	deleted := s.deleted
	s.mu.Unlock()
	slices.SortFunc(targets, func(a, b target) int { return a.index - b.index })
	if replica >= 0 && len(targets) == 0 {
		return fmt.Errorf("replica %d of service %q: %w; petrel describe service %s lists the replicas", replica, s.cfg.Name, backend.ErrNotFound, s.cfg.Name)
	}
	if follow && deleted {
		follow = false
	}
	lw := &lineWriter{w: w}
	if !follow {
		for _, t := range targets {
			prefix := ""
			if replica < 0 {
				prefix = fmt.Sprintf("[replica %d] ", t.index)
			}
			if err := tailFile(ctx, t.path, logtime.NewFilter(t.path, stamps, sinceSeconds, prefix), nil, lw); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(targets))
	for i, t := range targets {
		prefix := ""
		if replica < 0 {
			prefix = fmt.Sprintf("[replica %d] ", t.index)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tailFile(ctx, t.path, logtime.NewFilter(t.path, stamps, sinceSeconds, prefix), t.removed, lw)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// lineWriter serialises whole lines from several followers.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(f *logtime.Filter, b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := f.Write(l.w, b); err != nil {
		return err
	}
	if f, ok := l.w.(interface{ Flush() }); ok {
		f.Flush()
	}
	return nil
}

// tailFile copies path's lines to w through lines (prefix, timestamps);
// with until non-nil it keeps reading new lines (every 100 ms) until until
// is closed or ctx ends, then copies what is left.
func tailFile(ctx context.Context, path string, lines *logtime.Filter, until <-chan struct{}, w *lineWriter) error {
	var f *os.File
	var rd *bufio.Reader
	var partial []byte
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		last := until == nil
		if !last {
			select {
			case <-until:
				last = true
			case <-ctx.Done():
				return nil
			default:
			}
		}
		if f == nil && path != "" {
			if of, err := os.Open(path); err == nil {
				f, rd = of, bufio.NewReader(of)
			}
		}
		if f != nil {
			for {
				b, err := rd.ReadBytes('\n')
				partial = append(partial, b...)
				if err != nil {
					break
				}
				if werr := w.line(lines, partial); werr != nil {
					return werr
				}
				partial = nil
			}
		}
		if last {
			if len(partial) > 0 {
				return w.line(lines, append(partial, '\n'))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-until:
		case <-tick.C:
		}
	}
}

// TailLines returns the last n lines of the file at path, reading at most
// limit bytes from its end (the first, possibly cut, line dropped), or nil
// when the file cannot be read or is empty.
func TailLines(path string, n int, limit int64) []string {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	off := max(st.Size()-limit, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	text := strings.TrimRight(string(buf), "\n")
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
