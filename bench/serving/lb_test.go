// Package servingbench compares a service's load balancer with haproxy and
// with no proxy at all, side by side in one run (issue 9).
package servingbench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/petrel-dev/petrel/internal/serving"
)

// BenchmarkBalancers sends the same load — conc clients, keep-alive, each
// with one request in flight — to two replicas that wait 2 ms per request
// (an I/O-bound model server), three ways in alternating rounds so a
// shared machine's drift hits all three alike:
//
//   - direct: the clients round-robin over the two replicas;
//   - petrel: through `petrel lb` (serving.RunLB, its own process, as the
//     local engine runs it), least outstanding requests;
//   - haproxy: Debian's haproxy in HTTP mode, balance leastconn, keep-alive
//     to the replicas (skipped, and said so, when it is not installed).
//
// It reports each proxy's throughput as a ratio of direct's in the same
// rounds and the proxy process's CPU time per request (utime+stime from
// /proc/PID/stat over the rounds, divided by the requests it served).
//
//	go test -run '^$' -bench Balancers -benchtime 1x ./bench/serving/
func BenchmarkBalancers(b *testing.B) {
	dir := b.TempDir()
	petrel := filepath.Join(dir, "petrel")
	replica := filepath.Join(dir, "replica")
	for _, c := range [][]string{{petrel, "../../cmd/petrel"}, {replica, "../../internal/serving/testdata/replica"}} {
		if out, err := exec.Command("go", "build", "-o", c[0], c[1]).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", c[1], err, out)
		}
	}
	var backends []string
	for range 2 {
		port := freePort(b)
		cmd := exec.Command(replica)
		cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
		backends = append(backends, "127.0.0.1:"+strconv.Itoa(port))
		waitHTTP(b, "http://"+backends[len(backends)-1]+"/ready")
	}

	rb, err := serving.OpenRemoteBalancer(serving.RemoteConfig{Service: "bench", Dir: filepath.Join(dir, "lb"),
		Addr: "127.0.0.1:0", Argv: []string{petrel, "lb"}, Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rb.Close() }) //nolint:errcheck
	for i, be := range backends {
		u, _ := url.Parse("http://" + be)
		name := fmt.Sprintf("bench-%d", i)
		rb.AddEndpoint(name, u, nil)
		rb.SetReady(name, true)
	}
	petrelURL := rb.URL()
	petrelPid := pidListening(b, petrelURL)

	targets := []target{{name: "direct"}, {name: "petrel", url: petrelURL, pid: petrelPid}}
	if hp, err := exec.LookPath("haproxy"); err != nil {
		b.Logf("haproxy is not installed (apt-get install haproxy): compared with direct only")
	} else {
		port := freePort(b)
		cfg := fmt.Sprintf(`global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  balance leastconn
  server r0 %s
  server r1 %s
`, port, backends[0], backends[1])
		path := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(hp, "-db", "-f", path)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
		u := "http://127.0.0.1:" + strconv.Itoa(port)
		waitHTTP(b, u+"/ready")
		targets = append(targets, target{name: "haproxy", url: u, pid: cmd.Process.Pid})
	}

	for _, conc := range []int{8, 32} {
		b.Run(fmt.Sprintf("replica=sleep2ms/concurrency=%d", conc), func(b *testing.B) {
			const rounds, roundTime = 4, 3 * time.Second
			reqs := map[string]int64{}
			cpu := map[string]time.Duration{}
			for range b.N {
				for r := range rounds {
					for _, t := range targets {
						if r == 0 {
							run(t, backends, conc, 500*time.Millisecond) // warm connections
						}
						c0 := procCPU(t.pid)
						n := run(t, backends, conc, roundTime)
						cpu[t.name] += procCPU(t.pid) - c0
						reqs[t.name] += n
					}
				}
			}
			secs := float64(b.N*rounds) * roundTime.Seconds()
			b.ReportMetric(float64(reqs["direct"])/secs, "direct-req/s")
			for _, t := range targets[1:] {
				b.ReportMetric(float64(reqs[t.name])/secs, t.name+"-req/s")
				b.ReportMetric(float64(reqs[t.name])/float64(reqs["direct"]), t.name+"-ratio")
				b.ReportMetric(float64(cpu[t.name].Microseconds())/float64(reqs[t.name]), t.name+"-cpu-µs/req")
			}
		})
	}
}

type target struct {
	name string
	url  string // "" for direct
	pid  int
}

// run keeps conc requests in flight against t for d and returns how many
// succeeded; a failed request fails the benchmark's figures, so it panics.
func run(t target, backends []string, conc int, d time.Duration) int64 {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n, next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				u := t.url
				if u == "" {
					u = "http://" + backends[next.Add(1)%int64(len(backends))]
				}
				resp, err := client.Get(u + "/sleep?ms=2")
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					panic(fmt.Sprintf("%s: %v", t.name, err))
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					panic(fmt.Sprintf("%s: %s", t.name, resp.Status))
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return n.Load()
}

// procCPU is a process's user+system CPU time (0 for pid 0).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHTTP(b *testing.B, u string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer", u)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pidListening finds the process that listens on base's port, through
// /proc/net/tcp's socket inode.
func pidListening(b *testing.B, base string) int {
	u, _ := url.Parse(base)
	port, _ := strconv.Atoi(u.Port())
	data, _ := os.ReadFile("/proc/net/tcp")
	var inode string
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) && f[3] == "0A" {
			inode = f[9]
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join("/proc", d.Name(), "fd", fd.Name())); l == "socket:["+inode+"]" {
				return pid
			}
		}
	}
	b.Fatalf("no process listens on %s", base)
	return 0
}
