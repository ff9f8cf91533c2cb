package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/spec"
)

// Client implements backend.Backend over the server's unix socket.
type Client struct {
	home string
	http *http.Client
	// autoStart makes a request that finds no server start one and retry
	// (clients made by Connect).
	autoStart bool
}

var _ backend.Backend = (*Client)(nil)

// NewClient returns a client for the server of home; it does not connect.
func NewClient(home string) *Client {
	sock := SocketPath(home)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: 4,
	}
	return &Client{home: home, http: &http.Client{Transport: tr}}
}

// Ping returns the server's info, or an error when none answers.
func (c *Client) Ping(ctx context.Context) (*Info, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://petrel/v1/info", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req) // never auto-starts: start() itself pings
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Connect returns a client of home's server, starting `petrel server` in
// the background first when none answers (its log: home/server.log). The
// server is this same executable; extraArgs are passed to it.
func Connect(ctx context.Context, home string, extraArgs ...string) (*Client, error) {
	c := NewClient(home)
	if _, err := c.Ping(ctx); err == nil {
		c.autoStart = true
		return c, nil
	}
	if err := c.start(ctx, extraArgs); err != nil {
		return nil, err
	}
	c.autoStart = true
	return c, nil
}

// start starts `petrel server` in the background and waits until it answers.
func (c *Client) start(ctx context.Context, extraArgs []string) error {
	home := c.home
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", home, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(home, "server.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{"server", "--home", home}, extraArgs...)
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start petrel server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Ping(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		select {
		case <-exited:
			// Another client may have won the race to start it: then it
			// holds the lock and is still starting; wait for it.
			if _, err := c.Ping(ctx); err == nil {
				return nil
			}
			if !lockHeld(home) {
				return fmt.Errorf("petrel server exited at start; see %s", logPath)
			}
			exited = nil
		default:
		}
	}
	return fmt.Errorf("petrel server did not answer on %s within 20s; see %s", SocketPath(home), logPath)
}

// lockHeld reports whether a server holds home's lock (is running or
// starting).
func lockHeld(home string) bool {
	unlock, err := Lock(home)
	if err != nil {
		return errors.Is(err, ErrLocked)
	}
	unlock()
	return false
}

// Shutdown asks the server to stop and waits until its socket is gone.
func (c *Client) Shutdown(ctx context.Context) error {
	if err := c.do(ctx, http.MethodPost, "/v1/shutdown", nil, nil); err != nil {
		return err
	}
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(SocketPath(c.home)); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("server did not stop within 5s")
}

// do sends a JSON request and decodes a JSON response into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// send performs a request; a non-2xx answer becomes an error (ErrNotFound
// wrapped for 404, spec.ErrorList for invalid specs).
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://petrel"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil && c.autoStart && body == nil && ctx.Err() == nil && (isNoServer(err) || method == http.MethodGet && isServerGone(err)) {
		// The server went away (crashed or stopped): start a new one,
		// which re-adopts running workloads, and ask again.
		if serr := c.start(ctx, nil); serr == nil {
			req, _ = http.NewRequestWithContext(ctx, method, "http://petrel"+path, nil)
			resp, err = c.http.Do(req)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("petrel server on %s: %w", SocketPath(c.home), err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var ae apiError
	if err := json.NewDecoder(resp.Body).Decode(&ae); err != nil {
		return nil, fmt.Errorf("petrel server: %s", resp.Status)
	}
	if len(ae.Spec) > 0 {
		return nil, spec.ErrorList(ae.Spec)
	}
	if ae.NotFound {
		return nil, notFound(ae.Error)
	}
	return nil, errors.New(ae.Error)
}

// isNoServer reports whether err means nobody listens on the socket.
func isNoServer(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// isServerGone reports whether err means the server died while the
// request was on its way: the kernel accepted the connection into the
// dying listener's backlog and then reset it. Only a GET is asked again
// after it, since the server may or may not have acted on anything else.
func isServerGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

type notFoundErr string

func (e notFoundErr) Error() string { return string(e) }
func (e notFoundErr) Unwrap() error { return backend.ErrNotFound }

func notFound(msg string) error { return notFoundErr(msg) }

func filesOf(docs []*spec.Document) []SpecFile {
	var files []SpecFile
	seen := map[string]bool{}
	for _, d := range docs {
		if seen[d.File] {
			continue
		}
		seen[d.File] = true
		path := d.File
		if abs, err := filepath.Abs(path); err == nil && path != "-" {
			path = abs
		}
		files = append(files, SpecFile{Path: path, Dir: d.Dir, Data: d.FileData})
	}
	return files
}

// shellEnv returns this process's values of spec.ShellEnvVars: the CLI
// runs in the user's shell, so they are the shell's.
func shellEnv() map[string]string {
	env := map[string]string{}
	for _, k := range spec.ShellEnvVars {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	return env
}

// Apply implements backend.Backend.
func (c *Client) Apply(ctx context.Context, docs []*spec.Document) ([]backend.Applied, error) {
	var out []backend.Applied
	err := c.do(ctx, http.MethodPost, "/v1/apply", ApplyRequest{Files: filesOf(docs), ShellEnv: shellEnv()}, &out)
	return out, err
}

// ApplyReplace is Apply that re-runs finished jobs (petrel train).
func (c *Client) ApplyReplace(ctx context.Context, docs []*spec.Document) ([]backend.Applied, error) {
	var out []backend.Applied
	err := c.do(ctx, http.MethodPost, "/v1/apply", ApplyRequest{Files: filesOf(docs), Replace: true, ShellEnv: shellEnv()}, &out)
	return out, err
}

// GetJob implements backend.Backend.
func (c *Client) GetJob(ctx context.Context, name string) (*backend.Job, error) {
	var j backend.Job
	if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(name), nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// ListJobs implements backend.Backend.
func (c *Client) ListJobs(ctx context.Context) ([]backend.Job, error) {
	var out []backend.Job
	err := c.do(ctx, http.MethodGet, "/v1/jobs", nil, &out)
	return out, err
}

// WatchJob implements backend.Backend over a streamed NDJSON response.
func (c *Client) WatchJob(ctx context.Context, name string) (<-chan backend.Job, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(name)+"/watch", nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan backend.Job, 1)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(bufio.NewReader(resp.Body))
		for {
			var j backend.Job
			if err := dec.Decode(&j); err != nil {
				return
			}
			select {
			case ch <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// GetService implements backend.Backend.
func (c *Client) GetService(ctx context.Context, name string) (*backend.Service, error) {
	var s backend.Service
	if err := c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(name), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ListServices implements backend.Backend.
func (c *Client) ListServices(ctx context.Context) ([]backend.Service, error) {
	var out []backend.Service
	err := c.do(ctx, http.MethodGet, "/v1/services", nil, &out)
	return out, err
}

// Scale implements backend.Backend.
func (c *Client) Scale(ctx context.Context, name string, replicas int32) error {
	return c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(name)+"/scale?replicas="+strconv.Itoa(int(replicas)), nil, nil)
}

// Preempt implements backend.Backend: POST /v1/jobs/NAME/preempt.
func (c *Client) Preempt(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(name)+"/preempt", nil, nil)
}

// ListVolumes implements backend.Backend.
func (c *Client) ListVolumes(ctx context.Context) ([]backend.VolumeStatus, error) {
	var out []backend.VolumeStatus
	err := c.do(ctx, http.MethodGet, "/v1/volumes", nil, &out)
	return out, err
}

func objectPath(ref backend.Ref) string {
	return "/v1/objects/" + url.PathEscape(ref.Kind) + "/" + url.PathEscape(ref.Name)
}

// Logs implements backend.Backend.
func (c *Client) Logs(ctx context.Context, ref backend.Ref, opts backend.LogOptions, w io.Writer) error {
	switch {
	case opts.Previous && ref.Kind == "service":
		return fmt.Errorf("--previous: the local engine keeps one log per replica, across its restarts: petrel logs %s/%s --replica N shows them all", ref.Kind, ref.Name)
	}
	q := url.Values{}
	q.Set("attempt", strconv.Itoa(opts.Attempt))
	q.Set("replica", strconv.Itoa(opts.Replica))
	q.Set("follow", strconv.FormatBool(opts.Follow))
	if opts.Timestamps {
		q.Set("timestamps", "true")
	}
	if opts.SinceSeconds > 0 {
		q.Set("sinceSeconds", strconv.FormatInt(opts.SinceSeconds, 10))
	}
	path := objectPath(ref) + "/logs?" + q.Encode()
	// A job's log stream is the same bytes every time it is read (attempt
	// logs are append-only files, streamed in order), so a follow cut by
	// the server's death resumes, as train's watch does: the next server
	// (started on demand) streams again and the bytes already written are
	// skipped. Service logs interleave replicas and are not resumed.
	written := int64(0)
	for tries := 0; ; tries++ {
		resp, err := c.send(ctx, http.MethodGet, path, nil)
		if err != nil {
			if tries > 0 && tries < 20 && ctx.Err() == nil && (isNoServer(err) || isServerGone(err)) {
				// The server that was streaming is still going away.
				time.Sleep(250 * time.Millisecond)
				continue
			}
			return err
		}
		n, err := io.Copy(w, &skipReader{r: resp.Body, skip: written})
		resp.Body.Close()
		written += n
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil || !opts.Follow || ref.Kind != "job" || !c.autoStart || tries >= 20 {
			return err
		}
	}
}

// skipReader drops the first skip bytes of r (already written by an
// earlier stream of the same log).
type skipReader struct {
	r    io.Reader
	skip int64
}

func (s *skipReader) Read(p []byte) (int, error) {
	for s.skip > 0 {
		n, err := s.r.Read(p[:min(int64(len(p)), s.skip)])
		s.skip -= int64(n)
		if err != nil {
			return 0, err
		}
	}
	return s.r.Read(p)
}

// Metrics implements backend.Backend.
func (c *Client) Metrics(ctx context.Context, name string) ([]backend.MetricPoint, error) {
	var out []backend.MetricPoint
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(name)+"/metrics", nil, &out)
	return out, err
}

// Delete implements backend.Backend.
func (c *Client) Delete(ctx context.Context, ref backend.Ref) error {
	return c.do(ctx, http.MethodDelete, objectPath(ref), nil, nil)
}

// Diagnose implements backend.Backend.
func (c *Client) Diagnose(ctx context.Context, ref backend.Ref) ([]backend.Finding, error) {
	var out []backend.Finding
	err := c.do(ctx, http.MethodGet, objectPath(ref)+"/diagnose", nil, &out)
	return out, err
}
