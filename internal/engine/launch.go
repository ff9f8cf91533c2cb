package engine

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

// spareShim is a shim started ahead of time and waiting on its standard
// input for the directory of the attempt it is to own, so starting an
// attempt does not wait for a process start of this (large) binary. Once
// handed its directory it no longer reads from the server.
type spareShim struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func (e *Engine) startSpareShim() (*spareShim, error) {
	argv := append(append([]string(nil), e.cfg.ShimArgv...), "-")
	cmd := exec.Command(argv[0], argv[1:]...)
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

// launchShim starts the shim that owns the attempt or replica in dir: it
// hands dir to the spare shim (starting one if there is none) and starts
// the next spare in the background. Training attempts and service
// replicas both start here. Safe without e.mu.
func (e *Engine) launchShim(dir string) (*exec.Cmd, error) {
	e.spareMu.Lock()
	sp := e.spare
	e.spare = nil
	e.spareMu.Unlock()
	if sp == nil {
		var err error
		if sp, err = e.startSpareShim(); err != nil {
			return nil, fmt.Errorf("start shim: %w", err)
		}
	}
	_, err := io.WriteString(sp.stdin, dir+"\n")
	sp.stdin.Close()
	if err != nil {
		_ = sp.cmd.Process.Kill()
		_ = sp.cmd.Wait()
		return nil, fmt.Errorf("hand attempt to shim: %w", err)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		next, err := e.startSpareShim()
		e.spareMu.Lock()
		defer e.spareMu.Unlock()
		if err != nil || e.spare != nil || e.ctx.Err() != nil {
			if next != nil {
				next.stdin.Close() // it exits on EOF
				go next.cmd.Wait()
			}
			return
		}
		e.spare = next
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
func (e *Engine) cgroupFor(name string) string {
	if e.limitsErr != nil {
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
