package ui

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/petrel-dev/petrel/internal/backend"
)

// maxLine caps one log line sent as an event (longer lines are split), so
// a process printing without newlines cannot grow the server's buffer.
const maxLine = 64 << 10

// sseWriter turns a log byte stream into server-sent events, one "line"
// event per line, flushed as each write ends. Nothing is queued: when the
// browser reads slower than the workload prints, writes block and the
// backend's log reader waits (the log file is the buffer), so the server's
// memory stays bounded whatever the rate.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	partial []byte
	buf     bytes.Buffer
}

func (s *sseWriter) Write(p []byte) (int, error) {
	n := len(p)
	s.buf.Reset()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			if len(s.partial) >= maxLine {
				s.event(s.partial)
				s.partial = s.partial[:0]
			}
			break
		}
		if len(s.partial) > 0 {
			s.partial = append(s.partial, p[:i]...)
			s.event(s.partial)
			s.partial = s.partial[:0]
		} else {
			s.event(p[:i])
		}
		p = p[i+1:]
	}
	if s.buf.Len() == 0 {
		return n, nil
	}
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return 0, err
	}
	return n, s.rc.Flush()
}

// event appends one "data:" event; a carriage return (progress bars) ends
// an SSE line, so it is dropped.
func (s *sseWriter) event(line []byte) {
	s.buf.WriteString("data: ")
	for _, c := range line {
		if c != '\r' {
			s.buf.WriteByte(c)
		}
	}
	s.buf.WriteString("\n\n")
}

func (s *sseWriter) end(msg string) {
	if len(s.partial) > 0 {
		s.buf.Reset()
		s.event(s.partial)
		_, _ = s.w.Write(s.buf.Bytes())
	}
	_, _ = s.w.Write([]byte("event: end\ndata: " + msg + "\n\n"))
	_ = s.rc.Flush()
}

// streamLogs answers an EventSource with the workload's logs, following
// them until it ends or the browser goes away; a final "end" event tells
// the page not to reconnect (which would replay the log).
func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request, ref backend.Ref, opts backend.LogOptions) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w)}
	_ = sw.rc.Flush()
	opts.Follow = true
	err := s.src.Logs(r.Context(), ref, opts, sw)
	if r.Context().Err() != nil {
		return
	}
	msg := "end of log"
	if err != nil {
		msg = "logs ended: " + err.Error()
	}
	sw.end(msg)
}

func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.src.GetJob(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	opts := backend.LogOptions{Attempt: -1, Replica: -1}
	if v, err := strconv.Atoi(r.URL.Query().Get("attempt")); err == nil {
		opts.Attempt = v
	}
	s.streamLogs(w, r, backend.Ref{Kind: "job", Name: name}, opts)
}

func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.src.GetService(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	s.streamLogs(w, r, backend.Ref{Kind: "service", Name: name}, backend.LogOptions{Attempt: -1, Replica: -1})
}
