package node

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
)

// ShimRef identifies the shim that owns a pod, by pid and /proc start
// time (so a reused pid is never taken for it).
type ShimRef struct {
	Pid        int    `json:"pid"`
	StartTicks uint64 `json:"startTicks"`
}

// Alive reports whether the shim still runs.
func (r ShimRef) Alive() bool { return Alive(r.Pid, r.StartTicks) }

// spareShim is a shim started ahead of time and waiting on its standard
// input for the directory of the attempt it is to own, so starting an
// attempt does not wait for a process start of this (large) binary. Once
// handed its directory it no longer reads from the server.
type spareShim struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func (n *Node) startSpareShim() (*spareShim, error) {
	argv := append(append([]string(nil), n.shimArgv...), "-")
	cmd := exec.Command(argv[0], argv[1:]...)
	if argv[0] == "/proc/self/exe" {
		cmd.Args[0] = "petrel" // ps shows `petrel shim -`, not the link's path
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // survives the server
	cmd.Dir = "/"
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &spareShim{cmd: cmd, stdin: in}, nil
}

// Launch starts the shim that owns the pod in dir (its shim.json written):
// it hands dir to the spare shim (starting one if there is none) and
// starts the next spare in the background. Training attempts and service
// replicas both start here.
func (n *Node) Launch(dir string, record func(ShimRef) error) (*exec.Cmd, error) {
	n.spareMu.Lock()
	sp := n.spare
	n.spare = nil
	n.spareMu.Unlock()
	if sp == nil {
		var err error
		if sp, err = n.startSpareShim(); err != nil {
			return nil, fmt.Errorf("start shim: %w", err)
		}
	}
	// Durable intent: the shim that will own dir is recorded before it
	// is given dir, so a server that dies now finds it on its return.
	if record != nil {
		ref := ShimRef{Pid: sp.cmd.Process.Pid, StartTicks: StartTicks(sp.cmd.Process.Pid)}
		if err := record(ref); err != nil {
			sp.stdin.Close() // the spare exits on EOF without starting anything
			go sp.cmd.Wait()
			return nil, fmt.Errorf("record the pod's shim: %w", err)
		}
	}
	_, err := io.WriteString(sp.stdin, dir+"\n")
	sp.stdin.Close()
	if err != nil {
		_ = sp.cmd.Process.Kill()
		_ = sp.cmd.Wait()
		return nil, fmt.Errorf("hand the pod to its shim: %w", err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		next, err := n.startSpareShim()
		n.spareMu.Lock()
		defer n.spareMu.Unlock()
		if err != nil || n.spare != nil || n.closed {
			if next != nil {
				next.stdin.Close() // it exits on EOF
				go next.cmd.Wait()
			}
			return
		}
		n.spare = next
	}()
	return sp.cmd, nil
}

// hostEnv is the server's environment as a map: the base every attempt
// and replica starts from (so python3 is found on PATH).
func hostEnv() map[string]string {
	base := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			base[k] = v
		}
	}
	return base
}

// cgroupFor names the cgroup a new attempt or replica runs in, or "" where
// cgroups cannot be used. Every workload gets one, limits or not, so all
// of its processes (also those that left its process group) can be found
// and killed when it ends, as a container's are.
func (n *Node) cgroupFor(name string) string {
	if n.limitsErr != nil {
		return ""
	}
	return fmt.Sprintf("petrel/%s-%d", name, time.Now().UnixNano())
}

// Reason is the container-style reason of a finished workload: StartError,
// OOMKilled, Completed (exit code 0) or Error.
func (st *ShimStatus) Reason() string {
	switch {
	case st.StartError != "":
		return backend.ReasonStartError
	case st.OOMKilled:
		return backend.ReasonOOMKilled
	case st.ExitCode == 0:
		return backend.ReasonCompleted
	}
	return backend.ReasonError
}
