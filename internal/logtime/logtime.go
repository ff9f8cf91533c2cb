// Package logtime records when each part of a log file was written, in a
// small index next to it, so `petrel logs --timestamps` and `--since` work
// on the local engine as they do on Kubernetes, where the container
// runtime writes a timestamp before every line (the CRI log format). The
// log itself stays the workload's bytes, unchanged.
//
// The index is text, one entry per write: "END UNIXNANO\n", where END is
// the log's size (byte offset) just after the write and UNIXNANO the time
// of the write. A line is stamped with the time of the write that
// completed it: the first entry whose END is at or past the line's end.
package logtime

import (
	"bufio"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Suffix is appended to a log's path to name its index.
const Suffix = ".times"

// Writer appends entries to a log's index.
type Writer struct {
	f *os.File
}

// Create opens (appending) the index of the log at logPath.
func Create(logPath string) (*Writer, error) {
	f, err := os.OpenFile(logPath+Suffix, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f}, nil
}

// Mark records that the log, opened with O_APPEND as log, was written up
// to its current end at now.
func (w *Writer) Mark(log *os.File, now time.Time) {
	end, err := log.Seek(0, io.SeekCurrent)
	if err != nil {
		return
	}
	_, _ = w.f.Write([]byte(strconv.FormatInt(end, 10) + " " + strconv.FormatInt(now.UnixNano(), 10) + "\n"))
}

// Close closes the index.
func (w *Writer) Close() error { return w.f.Close() }

// Index is a log's index as read so far.
type Index struct {
	path  string
	off   int64 // bytes of the index file consumed
	part  string
	ends  []int64
	times []int64
	// fallback stamps lines no entry covers: the log's modification time
	// for logs written without an index (before this version, or by a
	// process petrel does not own), else the time they were read.
	fallback time.Time
}

// Open reads the index of the log at logPath (missing: every line gets
// the log's modification time).
func Open(logPath string) *Index {
	ix := &Index{path: logPath + Suffix}
	if _, err := os.Stat(ix.path); err != nil {
		if st, err := os.Stat(logPath); err == nil {
			ix.fallback = st.ModTime()
		}
	}
	ix.Refresh()
	return ix
}

// Refresh reads entries appended since the last read.
func (ix *Index) Refresh() {
	f, err := os.Open(ix.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(ix.off, io.SeekStart); err != nil {
		return
	}
	b, _ := io.ReadAll(bufio.NewReader(f))
	ix.off += int64(len(b))
	data := ix.part + string(b)
	for {
		i := strings.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		end, t, ok := strings.Cut(data[:i], " ")
		data = data[i+1:]
		if !ok {
			continue
		}
		e, err1 := strconv.ParseInt(end, 10, 64)
		n, err2 := strconv.ParseInt(t, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		ix.ends = append(ix.ends, e)
		ix.times = append(ix.times, n)
	}
	ix.part = data
}

// At is when the line ending at byte offset end (just past its newline)
// was written.
func (ix *Index) At(end int64) time.Time {
	i := sort.Search(len(ix.ends), func(i int) bool { return ix.ends[i] >= end })
	if i == len(ix.ends) {
		ix.Refresh()
		i = sort.Search(len(ix.ends), func(i int) bool { return ix.ends[i] >= end })
	}
	if i < len(ix.ends) {
		return time.Unix(0, ix.times[i])
	}
	if !ix.fallback.IsZero() {
		return ix.fallback
	}
	return time.Now()
}

// Stamp is the prefix `--timestamps` puts before a line: RFC 3339 with
// nanoseconds in UTC, and a space (as kubectl logs --timestamps).
func Stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) + " " }

// Filter writes a log's lines, in order from its start, as `logs` prints
// them: with a prefix, the time each was written when stamps is set, and
// only those written in the last sinceSeconds when that is above 0.
type Filter struct {
	ix     *Index
	stamps bool
	since  time.Time
	prefix string
	end    int64 // byte offset just past the last line written
}

// NewFilter reads the index of the log at logPath only when a line's time
// is needed.
func NewFilter(logPath string, stamps bool, sinceSeconds int64, prefix string) *Filter {
	f := &Filter{stamps: stamps, prefix: prefix}
	if sinceSeconds > 0 {
		f.since = time.Now().Add(-time.Duration(sinceSeconds) * time.Second)
	}
	if stamps || sinceSeconds > 0 {
		f.ix = Open(logPath)
	}
	return f
}

// Write writes one line of the log (with its newline; the log's lines
// must be passed in order, each once).
func (f *Filter) Write(w io.Writer, line []byte) (int, error) {
	f.end += int64(len(line))
	if f.ix == nil {
		return io.WriteString(w, f.prefix+string(line))
	}
	t := f.ix.At(f.end)
	if !f.since.IsZero() && t.Before(f.since) {
		return 0, nil
	}
	stamp := ""
	if f.stamps {
		stamp = Stamp(t)
	}
	return io.WriteString(w, f.prefix+stamp+string(line))
}
