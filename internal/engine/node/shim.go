package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/petrel-dev/petrel/internal/logtime"
)

// The shim is petrel's per-attempt process owner, like containerd-shim or
// conmon: `petrel shim DIR` (the same binary in another mode) reads
// DIR/shim.json, starts the workload in its own process group with its
// stdout and stderr going straight to the log file, records the pids, waits
// for it and writes DIR/status.json. The server never holds the workload's
// pipes or its wait status, so a crashed and restarted server re-adopts the
// attempt from these files.
const (
	ConfigFile = "shim.json"
	PidsFile   = "pids.json"
	StatusFile = "status.json"
	// LogFile is the attempt's output file, written by the workload itself.
	LogFile = "output.log"
)

// ShimConfig is what the server hands the shim (DIR/shim.json).
type ShimConfig struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"` // working directory
	// Limits, when set, are enforced in cgroup Cgroup (relative to the
	// shim's own cgroup).
	Limits Limits `json:"limits"`
	Cgroup string `json:"cgroup,omitempty"`
	// Display is argv[0] as petrel may print it (secret values masked).
	Display string `json:"display,omitempty"`
	// KeyFile opens the sealed values of Env and Argv (see Sealer).
	KeyFile string `json:"keyFile,omitempty"`
	// LogPath is the file the workload's output is appended to (default:
	// LogFile in the pod's directory). The workers of a distributed
	// attempt share their attempt's log.
	LogPath string `json:"logPath,omitempty"`
	// LinePrefix, when set, is written before every line of the
	// workload's output ("[worker 1] "), each line in one append, so
	// workers sharing a log interleave whole lines that say whose they
	// are. Output then goes through the shim instead of straight to the
	// file.
	LinePrefix string `json:"linePrefix,omitempty"`
}

// open replaces sealed values in cfg with their clear text, in memory.
func (cfg *ShimConfig) open() error {
	if cfg.KeyFile == "" {
		return nil
	}
	s, err := LoadSealer(cfg.KeyFile)
	if err != nil {
		return err
	}
	for i, kv := range cfg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if v, err = s.Open(v); err != nil {
				return err
			}
			cfg.Env[i] = k + "=" + v
		}
	}
	for i, a := range cfg.Argv {
		if cfg.Argv[i], err = s.Open(a); err != nil {
			return err
		}
	}
	return nil
}

// ShimPids identifies the shim and workload processes (DIR/pids.json).
// StartTicks are /proc/PID/stat start times, so a reused pid is never
// mistaken for ours.
type ShimPids struct {
	ShimPid        int    `json:"shimPid"`
	ShimStartTicks uint64 `json:"shimStartTicks"`
	Pid            int    `json:"pid"` // workload pid = its process group id
	StartTicks     uint64 `json:"startTicks"`
	// LimitError says why limits could not be enforced, if they could not.
	LimitError string    `json:"limitError,omitempty"`
	Started    time.Time `json:"started"`
}

// ShimStatus is the attempt's outcome (DIR/status.json).
type ShimStatus struct {
	// ExitCode is the workload's exit code, or 128+signal when a signal
	// ended it (the container runtime convention).
	ExitCode   int32     `json:"exitCode"`
	Signal     string    `json:"signal,omitempty"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	StartError string    `json:"startError,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}

// RunShim is the shim's main. It returns only after status.json is written
// (or when it cannot even read its config). dir "-" makes it a spare: it
// reads the attempt directory as one line from standard input, and exits
// quietly on end of input.
func RunShim(dir string) error {
	if dir == "-" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return nil // never used: the server stopped or had no work
		}
		dir = strings.TrimSpace(line)
		os.Stdin.Close()
	}
	var cfg ShimConfig
	if err := ReadJSON(filepath.Join(dir, ConfigFile), &cfg); err != nil {
		return fmt.Errorf("shim: %w", err)
	}
	status := ShimStatus{Started: time.Now()}
	logPath := cfg.LogPath
	if logPath == "" {
		logPath = filepath.Join(dir, LogFile)
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		err = cfg.open()
	}
	if err != nil {
		status.StartError = err.Error()
		status.ExitCode = 128
		status.Finished = time.Now()
		return WriteJSONAtomic(filepath.Join(dir, StatusFile), status)
	}
	defer log.Close()
	// msgs is where the shim's own messages go: prefixed as the
	// workload's lines are when the log is shared.
	var msgs io.Writer = log
	if cfg.LinePrefix != "" {
		msgs = &prefixedFile{File: log, prefix: cfg.LinePrefix}
	}

	// The workload must be born inside its cgroup, or a child it forks at
	// once (a `setsid … &`) escapes it. The shim joins the group just for
	// the fork and leaves right after, so its own memory is not counted.
	var lim limiter
	var limitErr error
	var leave func()
	if cfg.Cgroup != "" { // also without limits: the group tracks every process of the attempt
		if lim, limitErr = newLimiter(cfg.Cgroup, cfg.Limits); limitErr == nil {
			if leave, limitErr = joinWhileForking(lim); limitErr != nil {
				lim.Delete()
				lim = nil
			}
		}
		if limitErr != nil {
			fmt.Fprintf(msgs, "petrel: resource limits not enforced: %v\n", limitErr)
		}
	}
	// Output goes through the shim, as through a container runtime's
	// shim: it appends it to the log and records when each part was
	// written (logtime), for logs --timestamps and --since.
	var out io.Writer = log
	var copied chan struct{}
	var pipeW *os.File
	if pr, pw, perr := os.Pipe(); perr == nil {
		times, terr := logtime.Create(logPath)
		if terr != nil {
			fmt.Fprintf(msgs, "petrel: log timestamps not recorded: %v\n", terr)
		}
		pipeW = pw
		copied = make(chan struct{})
		go func() {
			defer close(copied)
			copyOutput(log, times, pr, cfg.LinePrefix)
			pr.Close()
			if times != nil {
				times.Close()
			}
		}()
		out = pw
	}
	cmd := &exec.Cmd{Path: cfg.Argv[0], Args: cfg.Argv, Env: cfg.Env, Dir: cfg.Dir, Stdout: out, Stderr: out}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	startErr := cmd.Start()
	if pipeW != nil {
		pipeW.Close() // the workload holds the write end now
		if startErr != nil {
			<-copied
		}
	}
	if leave != nil {
		leave()
	}
	if startErr != nil {
		msg := startErr.Error()
		if cfg.Display != "" {
			msg = strings.ReplaceAll(msg, cfg.Argv[0], cfg.Display)
		}
		startErr = errors.New(msg)
		fmt.Fprintf(msgs, "petrel: cannot start %q: %v\n", cfg.Display, startErr)
		if lim != nil {
			lim.Delete()
		}
		status.StartError = startErr.Error()
		status.ExitCode = 128
		status.Finished = time.Now()
		return WriteJSONAtomic(filepath.Join(dir, StatusFile), status)
	}
	pids := ShimPids{ShimPid: os.Getpid(), ShimStartTicks: StartTicks(os.Getpid()), Pid: cmd.Process.Pid,
		StartTicks: StartTicks(cmd.Process.Pid), Started: status.Started}
	if limitErr != nil {
		pids.LimitError = limitErr.Error()
	}
	if err := WriteJSONAtomic(filepath.Join(dir, PidsFile), pids); err != nil {
		fmt.Fprintf(msgs, "petrel: record pids: %v\n", err)
	}
	werr := cmd.Wait()
	status.Finished = time.Now()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		status.Signal = ws.Signal().String()
		status.ExitCode = 128 + int32(ws.Signal())
	} else {
		status.ExitCode = int32(cmd.ProcessState.ExitCode())
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		fmt.Fprintf(msgs, "petrel: wait: %v\n", werr)
	}
	if lim != nil {
		status.OOMKilled = lim.OOMKilled()
	}
	// As when a container's main process exits, whatever it left running in
	// its process group goes with it.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if lim != nil {
		lim.KillAll()
		lim.Delete()
	}
	if copied != nil {
		// Every line is in the log before the status says it ended; a
		// process that left the group and holds the pipe is not waited for.
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
	}
	return WriteJSONAtomic(filepath.Join(dir, StatusFile), status)
}

// StartTicks returns field 22 of /proc/PID/stat (start time in clock
// ticks since boot), or 0 when the process does not exist.
func StartTicks(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	if f[0] == "Z" { // a zombie has finished
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// Alive reports whether pid is still the process that started at ticks.
func Alive(pid int, ticks uint64) bool {
	return pid > 0 && ticks != 0 && StartTicks(pid) == ticks
}

// ReadJSON decodes the JSON file at path into v.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// WriteJSONAtomic writes v to path through a temporary file and rename, so
// a reader never sees a half-written file. It does not fsync: the files
// must survive a crash of the server or shim (the page cache does), and
// after a machine crash no workload survives anyway.
func WriteJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReapLost kills what is left of an attempt whose shim died without
// recording a status: the workload's process group (if it is still ours)
// and every process in the attempt's cgroup.
func ReapLost(dir string) {
	var p ShimPids
	if ReadJSON(filepath.Join(dir, PidsFile), &p) == nil && Alive(p.Pid, p.StartTicks) {
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	}
	var cfg ShimConfig
	if ReadJSON(filepath.Join(dir, ConfigFile), &cfg) == nil && cfg.Cgroup != "" {
		if lim, err := loadLimiter(cfg.Cgroup); err == nil {
			lim.KillAll()
			lim.Delete()
		}
	}
}

// copyOutput appends what the workload writes (r) to log until EOF and
// marks each write in times (nil: not recorded). Without a prefix the
// bytes are copied as they come; with one (the workers of a gang share a
// log) each line is written whole in one append with prefix before it,
// and a last line without a newline gets one.
func copyOutput(log *os.File, times *logtime.Writer, r io.Reader, prefix string) {
	mark := func() {
		if times != nil {
			times.Mark(log, time.Now())
		}
	}
	if prefix == "" {
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				_, _ = log.Write(buf[:n])
				mark()
			}
			if err != nil {
				return
			}
		}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue // a line longer than the buffer: keep reading it
		}
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			_, _ = log.Write(append([]byte(prefix), line...))
			mark()
			line = line[:0]
		}
		if err != nil {
			return
		}
	}
}

// prefixedFile is the shim's own messages to a shared log, prefixed as
// the workload's lines are.
type prefixedFile struct {
	*os.File
	prefix string
}

func (f *prefixedFile) Write(p []byte) (int, error) {
	if _, err := f.File.Write(append([]byte(f.prefix), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
