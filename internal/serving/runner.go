package serving

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// ReplicaSpec is everything needed to start one replica process.
type ReplicaSpec struct {
	Service    string
	Name       string // e.g. "digits-3"
	Index      int
	Generation int64
	// Argv is command + args after $(VAR) expansion; it is executed
	// directly, never through a shell.
	Argv []string
	// Env is the replica's environment as KEY=VALUE, PORT first.
	Env []string
	// Dir is the working directory ("" = the runner's).
	Dir  string
	Port int
	// LogPath is the file stdout and stderr are appended to.
	LogPath string
	// Template is the replica's pod template and Vars the variables set
	// before its env (PORT, HOST, Config.Env), unexpanded: a runner with a
	// pod layer of its own (the local engine's) builds the process from
	// these; Argv, Env and Dir are the same already resolved, for
	// ExecRunner.
	Template v1alpha1.PodTemplate
	Vars     [][2]string
}

// Exit is how a replica process ended.
type Exit struct {
	// Code is the exit status, or 128+signal when killed by a signal (as a
	// container's exitCode).
	Code int
	// Signal is set when a signal ended the process, e.g. "killed".
	Signal string
	// Reason is Completed (code 0), Error or OOMKilled, as a container's
	// terminated state.
	Reason string
}

// Proc is a started replica.
type Proc interface {
	// Pid is the process id of the replica's main process; its process
	// group id is the same.
	Pid() int
	// Wait delivers the exit once, then is closed.
	Wait() <-chan Exit
	// Signal sends sig to the replica's whole process group.
	Signal(sig syscall.Signal) error
}

// Forgetter is a Runner that keeps state per replica (the local engine's
// replica directories): Forget is called once a replica the controller
// stopped on purpose (scale-down, rollout, delete) has exited, so a later
// controller does not take it for one that died and restart it.
type Forgetter interface {
	Forget(rs ReplicaSpec)
}

// ErrUnschedulable is wrapped by a Runner's Start error when the replica
// cannot be placed now, e.g. not enough free GPUs: the replica stays
// Pending without a restart back-off (a pod the scheduler cannot place is
// Pending with PodScheduled=False, reason Unschedulable, not crash-looping)
// and is tried again on Service.Retry or after UnschedulableRecheck.
var ErrUnschedulable = errors.New("unschedulable")

// UnschedulableRecheck is how often a Pending, unschedulable replica is
// tried again without a Retry.
const UnschedulableRecheck = 5 * time.Second

// Runner starts replica processes. The local engine's shim-based runner
// and ExecRunner implement it.
type Runner interface {
	Start(ctx context.Context, spec ReplicaSpec) (Proc, error)
}

// ExecRunner starts replicas as child processes with os/exec, each in its
// own process group, inheriting this process's environment under the
// replica's Env.
type ExecRunner struct{}

type execProc struct {
	cmd  *exec.Cmd
	wait chan Exit
}

// Start implements Runner.
func (ExecRunner) Start(_ context.Context, s ReplicaSpec) (Proc, error) {
	if len(s.Argv) == 0 {
		return nil, errors.New("replica has no command; set spec.command")
	}
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log *os.File
	if s.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o755); err != nil {
			return nil, fmt.Errorf("create log directory for replica %s: %w", s.Name, err)
		}
		f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log of replica %s: %w", s.Name, err)
		}
		log = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		if log != nil {
			log.Close()
		}
		return nil, fmt.Errorf("start replica %s (%s): %w; check spec.command", s.Name, s.Argv[0], err)
	}
	p := &execProc{cmd: cmd, wait: make(chan Exit, 1)}
	go func() {
		err := cmd.Wait()
		if log != nil {
			log.Close()
		}
		p.wait <- exitOf(cmd.ProcessState, err)
		close(p.wait)
	}()
	return p, nil
}

func exitOf(ps *os.ProcessState, err error) Exit {
	if ps == nil {
		return Exit{Code: 128, Reason: "Error", Signal: fmt.Sprint(err)}
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		return Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal().String(), Reason: "Error"}
	case ps.ExitCode() == 0:
		return Exit{Code: 0, Reason: "Completed"}
	default:
		return Exit{Code: ps.ExitCode(), Reason: "Error"}
	}
}

func (p *execProc) Pid() int          { return p.cmd.Process.Pid }
func (p *execProc) Wait() <-chan Exit { return p.wait }
func (p *execProc) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal replica process group %d: %w", p.cmd.Process.Pid, err)
	}
	return nil
}
