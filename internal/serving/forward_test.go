package serving

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// lbFor starts a load balancer with handler's server as its one ready
// endpoint.
func lbFor(t *testing.T, handler http.Handler) *LoadBalancer {
	t.Helper()
	s := httptest.NewServer(handler)
	t.Cleanup(s.Close)
	lb := NewLoadBalancer("fwd")
	if _, err := lb.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	u, _ := url.Parse(s.URL)
	lb.Add("r", u)
	lb.SetReady("r", true)
	return lb
}

// echoBody answers the request body's length and SHA-256.
var echoBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
})

func sum(b []byte) string { h := sha256.Sum256(b); return fmt.Sprintf("%d %x", len(b), h[:]) }

// Bodies reach the replica whole, whatever their framing: small and large
// Content-Length bodies, chunked bodies, and a body sent only after the
// replica's 100 Continue (the client would wait for it for ten minutes).
func TestForwarderCarriesRequestBodies(t *testing.T) {
	lb := lbFor(t, echoBody)
	small := []byte(`{"inputs":[1,2,3]}`)
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Minute}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		name    string
		body    []byte
		chunked bool
		expect  bool
	}{{"small", small, false, false}, {"large", large, false, false}, {"chunked", large, true, false}, {"expect-continue", large, false, true}} {
		var body io.Reader = bytes.NewReader(c.body)
		if c.chunked {
			body = io.MultiReader(bytes.NewReader(c.body)) // unknown length: chunked
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, lb.URL()+"/infer", body)
		if c.chunked {
			req.ContentLength = -1
		}
		if c.expect {
			req.Header.Set("Expect", "100-continue")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != sum(c.body) {
			t.Errorf("%s: %d %q, want 200 %q", c.name, resp.StatusCode, got, sum(c.body))
		}
	}
}

// A replica that never answers Expect: 100-continue (an HTTP/1.0 server)
// still gets the body: after a second the load balancer sends the client
// a 100 itself, though the client would wait ten minutes for one.
func TestForwarderStartsABodyTheReplicaDoesNotAskFor(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				n, _ := io.Copy(io.Discard, req.Body) // never sends 100 Continue
				fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(n)), n)
			}()
		}
	}()
	lb := NewLoadBalancer("fwd")
	if _, err := lb.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	u, _ := url.Parse("http://" + l.Addr().String())
	lb.Add("r", u)
	lb.SetReady("r", true)
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Minute}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := bytes.Repeat([]byte("z"), 300<<10)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, lb.URL()+"/", bytes.NewReader(body))
	req.Header.Set("Expect", "100-continue")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != fmt.Sprint(len(body)) {
		t.Fatalf("%d %q, want 200 %d", resp.StatusCode, got, len(body))
	}
}

// A streamed response (server-sent events, tokens) reaches the client as
// the replica writes it, not when it ends.
func TestForwarderStreamsResponses(t *testing.T) {
	next := make(chan struct{})
	lb := lbFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: token %d\n\n", i)
			w.(http.Flusher).Flush()
			<-next
		}
	}))
	resp, err := http.Get(lb.URL() + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: token %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n') //nolint:errcheck // the blank line
		next <- struct{}{}  // the replica writes the next one only now
	}
}

// Responses without a body (HEAD, 204, 304) and bodies of every framing
// leave the client's connection usable: all requests go over one.
func TestForwarderKeepsTheClientConnectionAcrossResponseKinds(t *testing.T) {
	lb := lbFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/chunked":
			io.WriteString(w, "part1 ") //nolint:errcheck
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2") //nolint:errcheck
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello") //nolint:errcheck
		}
	}))
	c, err := net.Dial("tcp", strings.TrimPrefix(lb.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, step := range []struct {
		method, path string
		code         int
		body         string
	}{{"GET", "/", 200, "hello"}, {"HEAD", "/", 200, ""}, {"GET", "/204", 204, ""}, {"GET", "/304", 304, ""}, {"GET", "/chunked", 200, "part1 part2"}, {"GET", "/", 200, "hello"}} {
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", step.method, step.path)
		req, _ := http.NewRequest(step.method, step.path, nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s %s: %v", step.method, step.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != step.code || string(b) != step.body || resp.Close {
			t.Fatalf("%s %s: %d %q close=%v, want %d %q on a kept-alive connection", step.method, step.path, resp.StatusCode, b, resp.Close, step.code, step.body)
		}
	}
}

// A replica that closes a kept-alive connection after answering (as
// servers do when it idled out) costs no request: one sent on the dead
// connection is sent again on a new one, bodies included.
func TestForwarderResendsARequestThatMetAClosedReplicaConnection(t *testing.T) {
	lb := lbFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)+2))
		io.WriteString(w, "ok") //nolint:errcheck
		w.Write(b)              //nolint:errcheck
		w.(http.Flusher).Flush()
		// Close the connection without telling the client (no
		// Connection: close): the next request meets a dead socket.
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	}))
	large := strings.Repeat("x", 200<<10) // streamed, not kept for a resend
	for i := range 16 {
		var resp *http.Response
		var err error
		want := "ok"
		switch i % 4 {
		case 0:
			resp, err = http.Get(lb.URL() + "/")
		case 1:
			resp, err = http.Post(lb.URL()+"/", "text/plain", strings.NewReader(fmt.Sprint(i)))
			want += fmt.Sprint(i)
		case 2:
			resp, err = http.Post(lb.URL()+"/", "text/plain", strings.NewReader(large))
			want += large
		case 3: // chunked
			resp, err = http.Post(lb.URL()+"/", "text/plain", io.MultiReader(strings.NewReader(large)))
			want += large
		}
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %.80q, want 200 %.80q", i, resp.StatusCode, b, want)
		}
	}
}

// 101 Switching Protocols (WebSocket) turns the connection into a tunnel.
func TestForwarderTunnelsUpgradedConnections(t *testing.T) {
	lb := lbFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n") //nolint:errcheck
		io.Copy(c, brw)                                                                                       //nolint:errcheck
	}))
	c, err := net.Dial("tcp", strings.TrimPrefix(lb.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n") //nolint:errcheck
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		io.WriteString(c, msg) //nolint:errcheck
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("tunnel echoed %q %v, want %q", got, err, msg)
		}
	}
}

// Ambiguous framing (the request smuggling cases of RFC 9112 §6.1) is
// refused with 400 and never reaches a replica.
func TestForwarderRefusesAmbiguousFraming(t *testing.T) {
	var hits atomic.Int64
	lb := lbFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	for _, raw := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nabcde",
		"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		// A malformed chunk in the client's body is the client's error
		// too, not the replica's (no 502).
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(lb.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw) //nolint:errcheck
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: %v %v, want 400", raw, resp, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d malformed requests reached a replica handler", n)
	}
}
