package serving

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The load balancer's data path is an HTTP/1.1 forwarder of its own,
// not net/http's ReverseProxy: each client connection is served by one
// goroutine that parses only what framing needs (RFC 9112 §6: the request
// line, Content-Length, Transfer-Encoding, Connection, Expect, Upgrade),
// writes the head it received unchanged to a kept-alive replica
// connection, and copies the response back the same way. No header map is
// built and no goroutine sits on each replica connection, which is what
// ReverseProxy's Transport costs: about 130–220 µs of CPU per request on
// the 2-vCPU host of bench/serving against haproxy's 60–90 µs (issue 9).
// Like a Kubernetes Service, the request reaches the replica as the
// client sent it (Host included, no X-Forwarded-* headers).

// Forwarder limits and timeouts, as net/http's server defaults and the
// load balancer had them.
const (
	// maxHeadBytes bounds a request or response head (http.DefaultMaxHeaderBytes).
	maxHeadBytes = 1 << 20
	// clientIdleTimeout bounds the wait for a request's head on a
	// kept-alive client connection, and the reading of a small body.
	clientIdleTimeout = 120 * time.Second
	// replicaIdleTimeout: a replica connection idle longer is not reused.
	// Servers close idle keep-alive connections (gunicorn after 2 s,
	// uvicorn and Node after 5 s); under load a connection is reused
	// within milliseconds, so a short limit costs a connect only to a
	// service that is nearly idle anyway.
	replicaIdleTimeout = time.Second
	// expectContinueTimeout is how long a body announced with Expect:
	// 100-continue waits for the replica's 100 before it is sent anyway,
	// as curl and Go's Transport do (a replica that never sends 100, e.g.
	// an HTTP/1.0 server, would otherwise wait for ever).
	expectContinueTimeout = time.Second
	// maxIdlePerReplica bounds the kept-alive connections per replica.
	maxIdlePerReplica = 256
	// replayBody: request bodies up to this size are read before they
	// are sent, so a request that meets a replica connection the replica
	// had just closed can be sent again on a new one.
	replayBody  = 64 << 10
	dialTimeout = 5 * time.Second
)

// readError is an error reading the side a copy reads from: for a request
// body, the client (its framing, or it went away), not the replica.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

var (
	errBadHead     = errors.New("malformed HTTP head")
	errHeadTooBig  = errors.New("HTTP head too large")
	errStaleReplay = errors.New("kept-alive replica connection was closed")
)

// head is a parsed HTTP/1.x request or response head; raw is the head as
// received, CRLF CRLF included.
type head struct {
	raw           []byte
	method        string // requests
	code          int    // responses
	http10        bool
	contentLength int64 // -1: none
	chunked       bool
	close         bool // Connection: close (or HTTP/1.0 without keep-alive)
	expect100     bool
	upgrade       bool
}

var bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
var bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// readHead reads one head from br. The line endings must be CRLF; a
// header folded over lines (obs-fold) is refused, as are conflicting
// Content-Length values and Content-Length with Transfer-Encoding
// (RFC 9112 §6.1, the request smuggling cases).
func readHead(br *bufio.Reader, isRequest bool) (*head, error) {
	h := &head{contentLength: -1, raw: make([]byte, 0, 512)}
	first := true
	keepAlive := false
	for {
		start := len(h.raw)
		for {
			line, err := br.ReadSlice('\n')
			h.raw = append(h.raw, line...)
			if len(h.raw) > maxHeadBytes {
				return nil, errHeadTooBig
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if len(h.raw) == 0 && err == io.EOF {
					return nil, io.EOF
				}
				return nil, err
			}
			break
		}
		line := h.raw[start:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return nil, errBadHead
		}
		line = line[:len(line)-2]
		if first {
			first = false
			if err := h.parseStartLine(line, isRequest); err != nil {
				return nil, err
			}
			continue
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, errBadHead
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return nil, errBadHead // RFC 9112 §5.1: no space before the colon
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (h.contentLength >= 0 && h.contentLength != n) {
				return nil, errBadHead
			}
			h.contentLength = n
		case asciiEqualFold(name, "transfer-encoding"):
			if !asciiEqualFold(value, "chunked") {
				return nil, errBadHead // only chunked is forwarded
			}
			h.chunked = true
		case asciiEqualFold(name, "connection"):
			for _, tok := range bytes.Split(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				switch {
				case asciiEqualFold(tok, "close"):
					h.close = true
				case asciiEqualFold(tok, "keep-alive"):
					keepAlive = true
				case asciiEqualFold(tok, "upgrade"):
					h.upgrade = true
				}
			}
		case asciiEqualFold(name, "expect"):
			h.expect100 = asciiEqualFold(value, "100-continue")
		}
	}
	if h.chunked && (h.contentLength >= 0 || h.http10 && isRequest) {
		return nil, errBadHead // RFC 9112 §6.1: chunked is HTTP/1.1 only
	}
	if h.http10 && !keepAlive {
		h.close = true
	}
	return h, nil
}

func (h *head) parseStartLine(line []byte, isRequest bool) error {
	if isRequest {
		sp1 := bytes.IndexByte(line, ' ')
		sp2 := bytes.LastIndexByte(line, ' ')
		if sp1 <= 0 || sp2 <= sp1 {
			return errBadHead
		}
		h.method = string(line[:sp1])
		if !isToken(line[:sp1]) {
			return errBadHead
		}
		for _, c := range line[sp1+1 : sp2] {
			if c <= ' ' || c == 0x7f {
				return errBadHead // a control byte or space in the target
			}
		}
		switch string(line[sp2+1:]) {
		case "HTTP/1.1":
		case "HTTP/1.0":
			h.http10 = true
		default:
			return errBadHead
		}
		return nil
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return errBadHead
	}
	h.http10 = line[7] == '0'
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 {
		return errBadHead
	}
	h.code = code
	return nil
}

// isToken reports whether b is an RFC 9110 token (a method or a field name).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// replicaConn is a kept-alive connection to a replica.
type replicaConn struct {
	ep        *Endpoint
	c         net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

func (rc *replicaConn) close() {
	rc.c.Close()
	if rc.br != nil {
		rc.br.Reset(nil)
		bufReaders.Put(rc.br)
		rc.bw.Reset(nil)
		bufWriters.Put(rc.bw)
		rc.br, rc.bw = nil, nil
	}
}

// conn returns an idle connection to e (reused: true) or a new one.
func (e *Endpoint) conn() (*replicaConn, bool, error) {
	e.mu.Lock()
	for len(e.idleConns) > 0 {
		rc := e.idleConns[len(e.idleConns)-1]
		e.idleConns = e.idleConns[:len(e.idleConns)-1]
		if time.Since(rc.idleSince) < replicaIdleTimeout {
			e.mu.Unlock()
			return rc, true, nil
		}
		rc.close()
	}
	e.mu.Unlock()
	rc, err := e.dial()
	return rc, false, err
}

func (e *Endpoint) dial() (*replicaConn, error) {
	c, err := net.DialTimeout("tcp", e.URL.Host, dialTimeout)
	if err != nil {
		return nil, err
	}
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(c)
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(c)
	return &replicaConn{ep: e, c: c, br: br, bw: bw}, nil
}

// putConn keeps rc for reuse unless the endpoint has enough or is gone.
func (e *Endpoint) putConn(rc *replicaConn) {
	rc.idleSince = time.Now()
	e.mu.Lock()
	if !e.removed && len(e.idleConns) < maxIdlePerReplica {
		e.idleConns = append(e.idleConns, rc)
		rc = nil
	}
	e.mu.Unlock()
	if rc != nil {
		rc.close()
	}
}

// closeIdle closes the kept-alive connections; removed endpoints keep none.
func (e *Endpoint) closeIdle(removed bool) {
	e.mu.Lock()
	idle := e.idleConns
	e.idleConns = nil
	if removed {
		e.removed = true
	}
	e.mu.Unlock()
	for _, rc := range idle {
		rc.close()
	}
}

// serveConn serves one client connection until it closes, errs, idles
// out or the load balancer closes.
func (lb *LoadBalancer) serveConn(c net.Conn) {
	lb.conns.Store(c, struct{}{})
	defer lb.conns.Delete(c)
	defer c.Close()
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(c)
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(c)
	defer func() {
		br.Reset(nil)
		bufReaders.Put(br)
		bw.Reset(nil)
		bufWriters.Put(bw)
	}()
	var deadline time.Time
	for {
		// A read deadline covers the wait for the next request and its
		// head (clientIdleTimeout, renewed at most once a second: moving a
		// runtime timer per request costs more than the request's
		// parsing); it is lifted for bodies streamed to the replica and
		// for tunnels, which may take longer.
		if now := time.Now(); deadline.Sub(now) < clientIdleTimeout-time.Second {
			deadline = now.Add(clientIdleTimeout)
			c.SetReadDeadline(deadline) //nolint:errcheck
		}
		req, err := readHead(br, true)
		if err != nil {
			if errors.Is(err, errHeadTooBig) {
				lb.reply(bw, nil, http.StatusRequestHeaderFieldsTooLarge, "request head larger than 1 MiB", "send smaller headers")
			} else if errors.Is(err, errBadHead) {
				lb.reply(bw, nil, http.StatusBadRequest, "malformed HTTP/1.1 request: "+err.Error(), "send a valid HTTP/1.1 request")
			}
			return
		}
		if req.chunked || req.contentLength > replayBody || req.expect100 || req.upgrade {
			deadline = time.Time{}
			c.SetReadDeadline(deadline) //nolint:errcheck
		}
		if !lb.forward(c, br, bw, req) || req.close {
			return
		}
	}
}

// forward sends one request to a ready replica and its response back. It
// reports whether the client connection can carry another request.
func (lb *LoadBalancer) forward(c net.Conn, cbr *bufio.Reader, cbw *bufio.Writer, req *head) (keep bool) {
	start := time.Now()
	code := 0
	observed := false
	defer func() {
		if !observed {
			lb.metrics.observe(code, time.Since(start))
		}
	}()
	hasBody := req.chunked || req.contentLength > 0
	// A small body is read first, so it can be sent again (see replayBody).
	var body []byte
	if req.contentLength > 0 && req.contentLength <= replayBody && !req.expect100 {
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		if req.contentLength <= int64(len(*bp)) {
			body = (*bp)[:req.contentLength]
		} else {
			body = make([]byte, req.contentLength)
		}
		if _, err := io.ReadFull(cbr, body); err != nil {
			return false
		}
	}
	streamed := hasBody && body == nil
	var tried []*Endpoint
	fresh := false
	var ep *Endpoint
	for {
		if ep == nil || !fresh {
			ep = lb.pick(tried)
			if ep == nil {
				code = http.StatusServiceUnavailable
				return lb.unavailableRaw(cbw, req, body != nil || !hasBody)
			}
			ep.inFlight.Add(1)
			if ep.draining.Load() {
				// Drain started between pick and the increment: Drain may
				// have seen zero in flight, so this request goes elsewhere.
				ep.done()
				tried = append(tried, ep)
				ep = nil
				continue
			}
			tried = append(tried, ep)
		}
		var rc *replicaConn
		var reused bool
		var err error
		if fresh || streamed {
			// A streamed body cannot be sent twice, so it never risks a
			// kept-alive connection the replica may be closing at this
			// moment: a new connection costs little next to the body.
			rc, err = ep.dial()
		} else {
			rc, reused, err = ep.conn()
		}
		if err != nil {
			ep.done()
			if errors.Is(err, syscall.ECONNREFUSED) {
				// Nothing reached the replica: any request, whatever its
				// method, can go to another one, and this one is passed
				// over for refusedBackoff.
				ep.refusedAt.Store(time.Now().UnixNano())
				ep, fresh = nil, false
				continue
			}
			code = http.StatusBadGateway
			return lb.replicaFailed(cbw, ep, err, body != nil || !hasBody)
		}
		code, keep, err = lb.exchange(c, cbr, cbw, req, body, rc, reused, func(code int) {
			observed = true
			lb.metrics.observe(code, time.Since(start))
		})
		if errors.Is(err, errStaleReplay) && !fresh {
			// The replica had closed the kept-alive connection; nothing of
			// the request is lost: send it again on a new connection.
			fresh = true
			continue
		}
		ep.done()
		var re *readError
		if err != nil && code == 0 && errors.As(err, &re) {
			// The client's body was malformed or cut short: its fault, not
			// the replica's.
			code = http.StatusBadRequest
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
				lb.reply(cbw, http.Header{"Connection": {"close"}}, http.StatusBadRequest, "malformed request body: "+err.Error(), "send a body that matches its Content-Length or chunked framing")
			}
			return false
		}
		if err != nil && code == 0 {
			code = http.StatusBadGateway
			return lb.replicaFailed(cbw, ep, err, false)
		}
		return keep && err == nil
	}
}

// exchange writes req to rc and copies the response to the client. code
// is 0 when nothing was written to the client (an error then says why).
// errStaleReplay means a reused connection failed before the replica
// answered and the request can be sent again (no streamed body consumed).
// complete is called once the whole response is read from the replica,
// before its last bytes are flushed to the client, so the metrics count a
// request before its client can send the next one.
func (lb *LoadBalancer) exchange(c net.Conn, cbr *bufio.Reader, cbw *bufio.Writer, req *head, body []byte, rc *replicaConn, reused bool, complete func(code int)) (code int, keep bool, err error) {
	streamed := req.chunked || (req.contentLength > 0 && body == nil)
	bodyDone := !streamed
	fail := func(e error) (int, bool, error) {
		rc.close()
		if reused && !streamed && code == 0 && isStale(e) {
			return 0, false, errStaleReplay
		}
		return code, false, e
	}
	rc.bw.Write(req.raw) //nolint:errcheck // the flush reports it
	if body != nil {
		rc.bw.Write(body) //nolint:errcheck
	}
	clientWait := func() { c.SetReadDeadline(time.Now().Add(clientIdleTimeout)) } //nolint:errcheck
	sent100 := false
	if req.expect100 && streamed {
		// Send the head alone and let the replica answer 100 Continue
		// (or refuse) before the client's body is read; a replica silent
		// for expectContinueTimeout gets the body anyway.
		if err := rc.bw.Flush(); err != nil {
			return fail(err)
		}
		rc.c.SetReadDeadline(time.Now().Add(expectContinueTimeout)) //nolint:errcheck
		_, perr := rc.br.Peek(1)
		rc.c.SetReadDeadline(time.Time{}) //nolint:errcheck
		if perr != nil && !errors.Is(perr, os.ErrDeadlineExceeded) {
			return fail(perr)
		}
		if perr != nil {
			// A proxy may send 100 itself to start a body its next hop
			// will not ask for (RFC 9110 §10.1.1); the client may be
			// waiting for one longer than we do.
			cbw.WriteString("HTTP/1.1 100 Continue\r\n\r\n") //nolint:errcheck
			if err := cbw.Flush(); err != nil {
				rc.close()
				return 0, false, &readError{err}
			}
			sent100 = true
			if err := copyRequestBody(rc.bw, cbr, req, clientWait); err != nil {
				rc.close()
				return 0, false, err
			}
			bodyDone = true
		}
	} else if streamed {
		if err := copyRequestBody(rc.bw, cbr, req, clientWait); err != nil {
			rc.close()
			return 0, false, err
		}
		bodyDone = true
	}
	if err := rc.bw.Flush(); err != nil {
		return fail(err)
	}
	for {
		resp, err := readHead(rc.br, false)
		if err != nil {
			return fail(err)
		}
		code = resp.code
		if resp.code >= 100 && resp.code < 200 && resp.code != http.StatusSwitchingProtocols {
			if resp.code == http.StatusContinue && sent100 {
				continue // the client has had its 100 from us
			}
			cbw.Write(resp.raw) //nolint:errcheck
			if err := cbw.Flush(); err != nil {
				rc.close()
				return code, false, err
			}
			if resp.code == http.StatusContinue && !bodyDone {
				if err := copyRequestBody(rc.bw, cbr, req, clientWait); err != nil {
					rc.close()
					return code, false, err
				}
				if err := rc.bw.Flush(); err != nil {
					rc.close()
					return code, false, err
				}
				bodyDone = true
			}
			continue
		}
		cbw.Write(resp.raw) //nolint:errcheck
		if resp.code == http.StatusSwitchingProtocols {
			if err := cbw.Flush(); err != nil {
				rc.close()
				return code, false, err
			}
			tunnel(c, cbr, rc)
			return code, false, nil
		}
		noBody := req.method == http.MethodHead || resp.code == http.StatusNoContent || resp.code == http.StatusNotModified
		switch {
		case noBody:
			err = nil
		case resp.chunked:
			err = copyChunked(cbw, rc.br, nil)
		case resp.contentLength >= 0:
			// A body of known length goes out as the buffer fills, not
			// each time the replica pauses: its client cannot use part of
			// it, and a head sent alone costs a packet and a system call.
			err = copyN(cbw, rc.br, resp.contentLength, false, nil)
		default: // the body ends when the replica closes the connection
			err = copyN(cbw, rc.br, -1, true, nil)
			resp.close = true
		}
		if err == nil {
			complete(code)
		}
		if ferr := cbw.Flush(); err == nil {
			err = ferr
		}
		framed := noBody || resp.chunked || resp.contentLength >= 0
		if err != nil || resp.close || !bodyDone || !framed {
			rc.close()
		} else {
			rc.ep.putConn(rc)
		}
		// The client's connection carries another request only when this
		// response's end is known without closing it, and no body the
		// replica refused (after Expect: 100-continue) is left unread on it.
		return code, bodyDone && framed, err
	}
}

// isStale reports an error of a reused connection the replica closed:
// EOF before any response byte, a reset or a broken pipe.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// copyRequestBody streams the client's body (Content-Length or chunked)
// to the replica; wait renews the client's read deadline before each
// read that may block, so a stalled upload ends after clientIdleTimeout
// without progress.
func copyRequestBody(dst *bufio.Writer, src *bufio.Reader, req *head, wait func()) error {
	if req.chunked {
		return copyChunked(dst, src, wait)
	}
	return copyN(dst, src, req.contentLength, false, wait)
}

// copyN copies n bytes (n < 0: until EOF) from src to dst. With stream,
// dst is flushed whenever src has nothing buffered, so a streamed body
// (server-sent events, tokens) reaches the client as the replica writes
// it; without, dst is flushed only when full.
// Errors reading src are *readError. wait, when set, is called before a
// read that may block.
func copyN(dst *bufio.Writer, src *bufio.Reader, n int64, stream bool, wait func()) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for n != 0 {
		if src.Buffered() == 0 {
			if stream {
				if err := dst.Flush(); err != nil {
					return err
				}
			}
			if wait != nil {
				wait()
			}
		}
		p := buf
		if n > 0 && int64(len(p)) > n {
			p = p[:n]
		}
		k, err := src.Read(p)
		if k > 0 {
			if _, werr := dst.Write(p[:k]); werr != nil {
				return werr
			}
			if n > 0 {
				n -= int64(k)
			}
		}
		if err == io.EOF && n < 0 {
			return nil
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &readError{err}
		}
	}
	return nil
}

// copyChunked copies one chunked body, framing and trailers included,
// unchanged.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, wait func()) error {
	for {
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
			if wait != nil {
				wait()
			}
		}
		line, err := readLine(src)
		if err != nil {
			return &readError{err}
		}
		size, err := chunkSize(line)
		if err != nil {
			return &readError{err}
		}
		dst.Write(line) //nolint:errcheck
		if size == 0 {
			for { // trailer fields, then the final CRLF
				l, err := readLine(src)
				if err != nil {
					return &readError{err}
				}
				dst.Write(l) //nolint:errcheck
				if len(l) == 2 {
					return nil
				}
			}
		}
		if err := copyN(dst, src, size+2, true, wait); err != nil {
			return err
		}
	}
}

// readLine returns a CRLF-terminated line of at most 4 KiB (a chunk-size
// line or a trailer field), valid until the next read of src.
func readLine(src *bufio.Reader) ([]byte, error) {
	line, err := src.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errBadHead
	}
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' || len(line) > 4096 {
		return nil, errBadHead
	}
	return line, nil
}

func chunkSize(line []byte) (int64, error) {
	s := line[:len(line)-2]
	if i := bytes.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	s = bytes.TrimRight(s, " \t")
	if len(s) == 0 || len(s) > 15 {
		return 0, errBadHead
	}
	n, err := strconv.ParseInt(string(s), 16, 64)
	if err != nil || n < 0 {
		return 0, errBadHead
	}
	return n, nil
}

// tunnel copies both ways after 101 Switching Protocols (WebSocket) until
// either side closes.
func tunnel(c net.Conn, cbr *bufio.Reader, rc *replicaConn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(rc.c, cbr) //nolint:errcheck
		if tc, ok := rc.c.(*net.TCPConn); ok {
			tc.CloseWrite() //nolint:errcheck
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(c, rc.br) //nolint:errcheck
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite() //nolint:errcheck
		}
		done <- struct{}{}
	}()
	<-done
	<-done
	rc.close()
}

// reply writes a JSON error response. keep says whether the connection
// stays open for another request (false: Connection: close).
func (lb *LoadBalancer) reply(w *bufio.Writer, extra http.Header, code int, msg, fix string) {
	b, _ := json.Marshal(map[string]string{"error": msg, "fix": fix})
	b = append(b, '\n')
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", code, http.StatusText(code), len(b))
	for k, v := range extra {
		fmt.Fprintf(w, "%s: %s\r\n", k, v[0])
	}
	w.WriteString("\r\n") //nolint:errcheck
	w.Write(b)            //nolint:errcheck
	w.Flush()             //nolint:errcheck
}

func (lb *LoadBalancer) unavailableRaw(w *bufio.Writer, req *head, keep bool) bool {
	h := http.Header{"Retry-After": {"1"}}
	if !keep || req.close {
		h.Set("Connection", "close")
	}
	lb.reply(w, h, http.StatusServiceUnavailable, fmt.Sprintf("no ready replica for service %q", lb.Service),
		"wait for a replica to pass its readiness probe; petrel describe service "+lb.Service+" shows why none is ready")
	return keep && !req.close
}

func (lb *LoadBalancer) replicaFailed(w *bufio.Writer, ep *Endpoint, err error, keep bool) bool {
	var h http.Header
	if !keep {
		h = http.Header{"Connection": {"close"}}
	}
	lb.reply(w, h, http.StatusBadGateway, fmt.Sprintf("replica %s of service %q failed: %v", ep.Name, lb.Service, err),
		"retry the request; petrel describe service "+lb.Service+" shows the replica's restarts")
	return keep
}
