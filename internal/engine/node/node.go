// Package node is the local engine's kubelet: the only code that turns a
// pod template into a running process. It admits pods (GPUs the machine
// has), hands out GPUs exclusively, builds the environment with the
// kubelet's $(VAR) expansion, resolves the command as a container runtime
// does, sets cgroup limits, starts each pod under its own shim (the same
// binary in another mode, as containerd-shim) and stops pods with SIGTERM,
// the grace period and SIGKILL of the process group. Training attempts and
// service replicas both start here; the controllers above decide when.
package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/expansion"
)

// Node is this machine as the local engine's pods see it.
type Node struct {
	shimArgv  []string
	limitsErr error
	// GPUs are the machine's devices, handed out whole and exclusively.
	GPUs *Allocator
	// Sealer, when set, seals secret values in each pod's shim.json; the
	// shim opens them with the key file just before it starts the workload.
	Sealer *Sealer

	spareMu sync.Mutex // guards spare and closed
	spare   *spareShim
	closed  bool
	wg      sync.WaitGroup
}

// New returns the node for gpus whose shims run as shimArgv + DIR.
func New(shimArgv []string, gpus []GPU) *Node {
	return &Node{shimArgv: shimArgv, GPUs: NewAllocator(gpus), limitsErr: CgroupSupport()}
}

// Close stops the spare shim. Pods keep running under their shims.
func (n *Node) Close() {
	n.spareMu.Lock()
	n.closed = true
	if n.spare != nil {
		n.spare.stdin.Close() // an unused spare exits on EOF
		go n.spare.cmd.Wait()
		n.spare = nil
	}
	n.spareMu.Unlock()
	n.wg.Wait()
}

// LimitsError says why CPU and memory limits cannot be enforced on this
// host (nil when they can).
func (n *Node) LimitsError() error { return n.limitsErr }

// PodSpec is one pod to start: its template and what the controller that
// owns it adds.
type PodSpec struct {
	// Name names the pod's cgroup (unique per start).
	Name     string
	Template *v1alpha1.PodTemplate
	// BaseDir is the spec file's directory: a relative workingDir (or none)
	// is resolved against it.
	BaseDir string
	// ShellEnv is laid over the server's environment: the submitting
	// shell's PATH, VIRTUAL_ENV, CONDA_PREFIX … (spec.ShellEnvVars), so a
	// job started from an activated virtualenv finds its python.
	ShellEnv map[string]string
	// Vars are variables set before the template's env, in order (the
	// pod's identity, each mount's pathEnv, PORT …); later ones and the
	// template's env may reference them as $(NAME).
	Vars [][2]string
	// GPUs are the device indices allocated to the pod.
	GPUs []int
}

// Prepare resolves a pod's argv, environment and working directory into
// the shim's config: the server's environment with ShellEnv over it as the
// base (so python3 is found on the submitting shell's PATH), then Vars, the GPU devices (CUDA_VISIBLE_DEVICES and
// NVIDIA_VISIBLE_DEVICES) and the template's env, each value expanded
// against those before it, and argv expanded against them all (kubelet
// semantics: $(VAR), $$ for a literal $). The error says why the pod cannot
// start (a container's StartError).
func (n *Node) Prepare(p PodSpec) (*ShimConfig, error) {
	t := p.Template
	vars := append(append([][2]string(nil), p.Vars...), GPUEnv(n.GPUs.Total(), p.GPUs)...)
	for _, ev := range t.Env {
		vars = append(vars, [2]string{ev.Name, ev.Value})
	}
	base := hostEnv()
	for k, v := range p.ShellEnv {
		base[k] = v
	}
	envList, env := expandEnv(base, vars)
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	argv := make([]string, 0, len(t.Command)+len(t.Args))
	for _, s := range append(append([]string(nil), t.Command...), t.Args...) {
		argv = append(argv, expansion.Expand(s, lookup))
	}
	if len(argv) == 0 {
		return nil, errors.New("no command: set spec.command")
	}
	wd := p.BaseDir
	if t.WorkingDir != "" {
		wd = expansion.Expand(t.WorkingDir, lookup)
		if !filepath.IsAbs(wd) {
			wd = filepath.Join(p.BaseDir, wd)
		}
	}
	if st, err := os.Stat(wd); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("workingDir %q is not a directory", wd)
	}
	path, err := LookPath(argv[0], wd, env["PATH"])
	if err != nil {
		return nil, err
	}
	argv[0] = path
	final := make([]string, 0, len(base)+len(envList))
	for k, v := range base {
		if _, over := env[k]; over && v != env[k] {
			continue
		}
		final = append(final, k+"="+v)
	}
	for _, kv := range envList {
		final = append(final, kv[0]+"="+kv[1])
	}
	cfg := &ShimConfig{Argv: argv, Env: final, Dir: wd, Display: v1alpha1.MaskSecretValues(argv[0], t.Env)}
	n.seal(cfg, t.Env)
	if n.limitsErr == nil {
		// Every pod gets a cgroup, limits or not, so all of its processes
		// can be found and killed when it ends.
		if q := t.Resources.Memory; q != nil {
			cfg.Limits.MemoryBytes = q.Value()
		}
		if q := t.Resources.CPU; q != nil {
			cfg.Limits.CPUMillicores = q.MilliValue()
		}
		cfg.Cgroup = n.cgroupFor(p.Name)
	}
	return cfg, nil
}

// Start writes cfg into the pod directory dir and launches its shim. The
// caller waits on the returned shim process (its child) or, after a
// restart, watches dir (Alive, StatusFile).
//
// record, when set, is called with the shim that will own the pod before
// the shim is given the pod (durable intent: the caller stores it, so a
// restarted server can tell a pod being started from one never started);
// its error aborts the start with nothing run.
func (n *Node) Start(dir string, cfg *ShimConfig, record func(ShimRef) error) (*exec.Cmd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pod directory: %w", err)
	}
	// A restart reuses a replica's directory: the log is appended to, the
	// status and pids of the previous run go.
	_ = os.Remove(filepath.Join(dir, StatusFile))
	_ = os.Remove(filepath.Join(dir, PidsFile))
	if err := WriteJSONAtomic(filepath.Join(dir, ConfigFile), cfg); err != nil {
		return nil, fmt.Errorf("write pod config: %w", err)
	}
	return n.Launch(dir, record)
}

// Kill stops the pod in dir as the kubelet does: SIGTERM to its process
// group, up to grace for it to exit, then SIGKILL of whatever is left of
// the group. It returns once the signals are sent (it waits for the
// workload's pids for up to 1 s after a start).
func Kill(dir string, grace time.Duration) {
	var p ShimPids
	for i := 0; i < 50; i++ { // the shim writes pids.json right after starting the workload
		if err := ReadJSON(filepath.Join(dir, PidsFile), &p); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.Pid == 0 || !Alive(p.Pid, p.StartTicks) {
		return
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !Alive(p.Pid, p.StartTicks) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// LookPath resolves a command as a container runtime does: a name with a
// slash is a path (relative to the working directory), otherwise it is
// searched in PATH. The error is the StartError message.
func LookPath(name, wd, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(wd, p)
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("exec: %q: no such file or directory", name)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("exec: %q: permission denied (not an executable file)", name)
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// seal replaces every env value and argv element that holds a secret
// value (the variable itself or one that $(VAR)-references it) with its
// sealed form, so shim.json holds no secret in clear text.
func (n *Node) seal(cfg *ShimConfig, env []v1alpha1.EnvVar) {
	if n.Sealer == nil {
		return
	}
	var secrets []string
	for _, e := range env {
		if e.Secret && e.Value != "" {
			secrets = append(secrets, e.Value)
		}
	}
	if len(secrets) == 0 {
		return
	}
	holds := func(s string) bool {
		for _, v := range secrets {
			if strings.Contains(s, v) {
				return true
			}
		}
		return false
	}
	for i, kv := range cfg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && holds(v) {
			cfg.Env[i] = k + "=" + n.Sealer.Seal(v)
		}
	}
	for i, a := range cfg.Argv {
		if holds(a) {
			cfg.Argv[i] = n.Sealer.Seal(a)
		}
	}
	cfg.KeyFile = n.Sealer.Path()
}
