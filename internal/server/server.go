// Package server is `petrel server`: the local engine behind an HTTP API on
// a unix socket ($PETREL_HOME/petrel.sock, mode 0600 in a 0700 directory,
// and every connection's peer uid checked), and the client that implements
// backend.Backend over that socket, starting the server when none runs.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine"
	"github.com/petrel-dev/petrel/internal/spec"
	"github.com/petrel-dev/petrel/internal/ui"
)

// SocketPath is the API socket under home.
func SocketPath(home string) string { return filepath.Join(home, "petrel.sock") }

// Engine is what the server exposes: a Backend that can also replace a
// finished job (petrel train re-runs) and report host facts.
type Engine interface {
	backend.Backend
	ApplyReplace(ctx context.Context, docs []*spec.Document) ([]backend.Applied, error)
	GPUs() []engine.GPU
	LimitsError() error
}

// Info describes the running server (GET /v1/info).
type Info struct {
	PID     int          `json:"pid"`
	Version string       `json:"version"`
	GPUs    []engine.GPU `json:"gpus"`
	// Limits is "enforced" or why CPU and memory limits are not.
	Limits string `json:"limits"`
	// UI is the dashboard's base URL (its token is in ui.TokenFile), or
	// UIError says why there is none.
	UI      string `json:"ui,omitempty"`
	UIError string `json:"uiError,omitempty"`
}

// SpecFile is one spec file sent to the server, parsed and validated there.
type SpecFile struct {
	Path string `json:"path"`
	Dir  string `json:"dir"`
	Data []byte `json:"data"`
}

// ApplyRequest is the body of POST /v1/apply.
type ApplyRequest struct {
	Files   []SpecFile `json:"files"`
	Replace bool       `json:"replace"`
	// ShellEnv holds the client's values of spec.ShellEnvVars (unset ones
	// left out); the server puts them on every document
	// (spec.Document.ShellEnv) for the engine to record with the job.
	// Optional: older clients send none.
	ShellEnv map[string]string `json:"shellEnv,omitempty"`
}

// Server serves an Engine on a unix socket.
type Server struct {
	eng     Engine
	version string
	ui      string
	uiErr   string
	srv     *http.Server
	stop    chan struct{}
	once    sync.Once
}

// ErrLocked is returned by Lock when another server holds home's lock.
var ErrLocked = errors.New("another petrel server is running")

// Lock takes home's server lock (an exclusive flock on server.lock) and
// returns its release. It must be held before the engine is created:
// creating one reads and writes state.db and binds the services' ports,
// so only the one engine that holds the lock may do it (concurrent
// auto-starts lose here, before touching anything).
func Lock(home string) (unlock func(), err error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(home, "server.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w on %s", ErrLocked, home)
	}
	return func() { lock.Close() }, nil
}

// Run listens on home's socket and serves until ctx ends or a client asks
// it to shut down. The caller holds home's Lock.
func Run(ctx context.Context, home, version string, eng Engine) error {
	sock := SocketPath(home)
	_ = os.Remove(sock) // stale socket of a crashed server; we hold the lock
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return err
	}
	s := &Server{eng: eng, version: version, stop: make(chan struct{})}
	// The dashboard and /metrics, on loopback with a token (internal/ui).
	uctx, ucancel := context.WithCancel(ctx)
	defer ucancel()
	if s.ui, err = ui.ServeLocal(uctx, home, eng, func() int { return len(eng.GPUs()) }); err != nil {
		s.uiErr = err.Error()
	}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ownerOnly{ln.(*net.UnixListener)}) }()
	select {
	case <-ctx.Done():
	case <-s.stop:
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
	_ = os.Remove(sock)
	return nil
}

// ownerOnly accepts connections only from processes of the server's own
// user (SO_PEERCRED), on top of the socket's 0600 mode.
type ownerOnly struct{ *net.UnixListener }

func (l ownerOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		raw, err := c.SyscallConn()
		if err != nil {
			c.Close()
			continue
		}
		var cred *syscall.Ucred
		_ = raw.Control(func(fd uintptr) {
			cred, _ = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		})
		if cred == nil || int(cred.Uid) != os.Getuid() {
			c.Close()
			continue
		}
		return c, nil
	}
}

type apiError struct {
	Error    string `json:"error"`
	NotFound bool   `json:"notFound,omitempty"`
	// Spec holds validation errors with positions, when the request's
	// spec was invalid.
	Spec []*spec.FieldError `json:"spec,omitempty"`
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	body := apiError{Error: err.Error()}
	var list spec.ErrorList
	switch {
	case errors.Is(err, backend.ErrNotFound):
		code, body.NotFound = http.StatusNotFound, true
	case errors.As(err, &list):
		code, body.Spec = http.StatusUnprocessableEntity, list
	}
	writeJSON(w, code, body)
}

// MaxApplyBytes bounds an apply request's body (the spec files, JSON):
// specs are small, data goes into a Volume's source directory, which the
// server reads from disk. A larger body is answered 413 before it is read.
const MaxApplyBytes = 16 << 20

func writeTooLarge(w http.ResponseWriter) {
	writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf(
		"the apply request is larger than %d MiB: spec files are small; put data in a Volume's source directory (read from disk), not in the spec", MaxApplyBytes>>20)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// flushWriter flushes after every write so streams reach the client live.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	fw.f.Flush()
	return n, err
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		info := Info{PID: os.Getpid(), Version: s.version, GPUs: s.eng.GPUs(), Limits: "enforced", UI: s.ui, UIError: s.uiErr}
		if err := s.eng.LimitsError(); err != nil {
			info.Limits = err.Error()
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "stopping"})
		s.once.Do(func() { close(s.stop) })
	})
	mux.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		var req ApplyRequest
		if r.ContentLength > MaxApplyBytes {
			writeTooLarge(w)
			return
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxApplyBytes)).Decode(&req); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeTooLarge(w)
				return
			}
			writeErr(w, fmt.Errorf("decode apply request: %w", err))
			return
		}
		var docs []*spec.Document
		var errs spec.ErrorList
		for _, f := range req.Files {
			d, err := spec.ParseDir(f.Path, f.Dir, f.Data)
			var list spec.ErrorList
			if errors.As(err, &list) {
				errs = append(errs, list...)
			} else if err != nil {
				writeErr(w, err)
				return
			}
			docs = append(docs, d...)
		}
		if len(req.ShellEnv) > 0 {
			for _, d := range docs {
				d.ShellEnv = req.ShellEnv
			}
		}
		docs = spec.MergeIdentical(docs)
		if len(errs) == 0 {
			if err := backend.ValidateSpec(r.Context(), s.eng, docs); err != nil {
				errors.As(err, &errs)
			}
		}
		if len(errs) > 0 {
			writeErr(w, errs)
			return
		}
		apply := s.eng.Apply
		if req.Replace {
			apply = s.eng.ApplyReplace
		}
		out, err := apply(r.Context(), docs)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		jobs, err := s.eng.ListJobs(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, jobs)
	})
	mux.HandleFunc("GET /v1/jobs/{name}", func(w http.ResponseWriter, r *http.Request) {
		j, err := s.eng.GetJob(r.Context(), r.PathValue("name"))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, j)
	})
	mux.HandleFunc("GET /v1/jobs/{name}/watch", func(w http.ResponseWriter, r *http.Request) {
		ch, err := s.eng.WatchJob(r.Context(), r.PathValue("name"))
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		fl, _ := w.(http.Flusher)
		enc := json.NewEncoder(w)
		for j := range ch {
			if err := enc.Encode(j); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
	})
	mux.HandleFunc("GET /v1/jobs/{name}/metrics", func(w http.ResponseWriter, r *http.Request) {
		pts, err := s.eng.Metrics(r.Context(), r.PathValue("name"))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, pts)
	})
	mux.HandleFunc("GET /v1/volumes", func(w http.ResponseWriter, r *http.Request) {
		vs, err := s.eng.ListVolumes(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, vs)
	})
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		svcs, err := s.eng.ListServices(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, svcs)
	})
	mux.HandleFunc("GET /v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		svc, err := s.eng.GetService(r.Context(), r.PathValue("name"))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, svc)
	})
	mux.HandleFunc("POST /v1/services/{name}/scale", func(w http.ResponseWriter, r *http.Request) {
		// replicas is an int32, as autoscaling/v1 Scale's spec.replicas:
		// a larger number is refused, never wrapped.
		n, err := strconv.ParseInt(r.URL.Query().Get("replicas"), 10, 32)
		if err != nil || n < 0 {
			writeErr(w, fmt.Errorf("replicas must be a whole number from 0 to %d, got %q", math.MaxInt32, r.URL.Query().Get("replicas")))
			return
		}
		if err := s.eng.Scale(r.Context(), r.PathValue("name"), int32(n)); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"replicas": n})
	})
	mux.HandleFunc("POST /v1/jobs/{name}/preempt", func(w http.ResponseWriter, r *http.Request) {
		if err := s.eng.Preempt(r.Context(), r.PathValue("name")); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, backend.Ref{Kind: "job", Name: r.PathValue("name")})
	})
	// Kind-generic routes: kind is job, service or volume.
	mux.HandleFunc("DELETE /v1/objects/{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
		ref := backend.Ref{Kind: r.PathValue("kind"), Name: r.PathValue("name")}
		if err := s.eng.Delete(r.Context(), ref); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ref)
	})
	mux.HandleFunc("GET /v1/objects/{kind}/{name}/diagnose", func(w http.ResponseWriter, r *http.Request) {
		fs, err := s.eng.Diagnose(r.Context(), backend.Ref{Kind: r.PathValue("kind"), Name: r.PathValue("name")})
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, fs)
	})
	mux.HandleFunc("GET /v1/objects/{kind}/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := backend.LogOptions{Attempt: -1, Replica: -1, Follow: q.Get("follow") == "true"}
		if v := q.Get("attempt"); v != "" {
			opts.Attempt, _ = strconv.Atoi(v)
		}
		if v := q.Get("replica"); v != "" {
			opts.Replica, _ = strconv.Atoi(v)
		}
		opts.Timestamps = q.Get("timestamps") == "true"
		if v := q.Get("sinceSeconds"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeErr(w, fmt.Errorf("sinceSeconds %q: want a whole number of seconds, 0 or more", v))
				return
			}
			opts.SinceSeconds = n
		}
		ref := backend.Ref{Kind: r.PathValue("kind"), Name: r.PathValue("name")}
		// Check existence first so a missing object is a 404, not a stream.
		var err error
		switch ref.Kind {
		case "job":
			var j *backend.Job
			if j, err = s.eng.GetJob(r.Context(), ref.Name); err == nil && opts.Attempt >= len(j.Attempts) {
				err = fmt.Errorf("job %q has %d attempt(s), numbered from 0: attempt %d %w", ref.Name, len(j.Attempts), opts.Attempt, backend.ErrNotFound)
			}
		case "service":
			var svc *backend.Service
			if svc, err = s.eng.GetService(r.Context(), ref.Name); err == nil && opts.Replica >= 0 {
				err = noReplica(svc, opts.Replica)
			}
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var out io.Writer = w
		if fl, ok := w.(http.Flusher); ok {
			out = flushWriter{w, fl}
		}
		if err := s.eng.Logs(r.Context(), ref, opts, out); err != nil && r.Context().Err() == nil {
			fmt.Fprintf(out, "\npetrel: logs ended: %v\n", err)
		}
	})
	return mux
}

// noReplica returns an ErrNotFound error when svc has no replica index,
// naming the replicas it has; nil when it has.
func noReplica(svc *backend.Service, index int) error {
	var have []string
	for _, r := range svc.Replicas {
		if r.Index == index {
			return nil
		}
		have = append(have, strconv.Itoa(r.Index))
	}
	if len(have) == 0 {
		return fmt.Errorf("service %q has no replicas now: replica %d %w", svc.Name, index, backend.ErrNotFound)
	}
	return fmt.Errorf("service %q has replicas %s: replica %d %w", svc.Name, strings.Join(have, ", "), index, backend.ErrNotFound)
}
