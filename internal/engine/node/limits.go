package node

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Limits are the resource limits of one attempt: MemoryBytes (0 = none)
// and CPUMillicores (0 = none), from spec.resources.memory and .cpu.
type Limits struct {
	MemoryBytes   int64 `json:"memoryBytes,omitempty"`
	CPUMillicores int64 `json:"cpuMillicores,omitempty"`
}

// cpuPeriodMicros is the CFS period; the quota is millicores × period / 1000,
// as the kubelet sets cpu.cfs_quota_us for a CPU limit.
const cpuPeriodMicros = 100000

// limiter places a process in a fresh cgroup with the attempt's limits and
// reports OOM kills. It hides cgroup v1 versus v2 (containerd/cgroups).
type limiter interface {
	Add(pid int) error
	// OOMKilled reports whether the kernel OOM-killed a process in the group.
	OOMKilled() bool
	// KillAll SIGKILLs every process in the group, also those that left
	// the workload's process group (setsid), as a container's end does.
	KillAll()
	Delete()
}

// killPids SIGKILLs the pids list returns until it returns none (bounded).
func killPids(list func() []int) {
	for i := 0; i < 100; i++ {
		pids := list()
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// joinWhileForking moves the calling process into lim's group and returns
// the function that moves it back to the group it came from.
func joinWhileForking(lim limiter) (func(), error) {
	self := os.Getpid()
	var orig interface{ AddProc(uint64) error }
	if cgroups.Mode() == cgroups.Unified {
		g, err := cgroup2.PidGroupPath(self)
		if err != nil {
			return nil, err
		}
		m, err := cgroup2.Load(g)
		if err != nil {
			return nil, err
		}
		orig = m
	} else {
		cg, err := cgroup1.Load(cgroup1.PidPath(self), cgroup1.WithHierarchy(memCPUHierarchy))
		if err != nil {
			return nil, err
		}
		orig = cgAdder{cg}
	}
	if err := lim.Add(self); err != nil {
		return nil, err
	}
	return func() { _ = orig.AddProc(uint64(self)) }, nil
}

type cgAdder struct{ cg cgroup1.Cgroup }

func (a cgAdder) AddProc(pid uint64) error { return a.cg.AddProc(pid) }

// loadLimiter opens an existing attempt cgroup (to clean up after a shim
// that died).
func loadLimiter(group string) (limiter, error) {
	if cgroups.Mode() == cgroups.Unified {
		parent, err := cgroup2.NestedGroupPath("")
		if err != nil {
			return nil, err
		}
		g := filepath.Join(parent, group)
		m, err := cgroup2.Load(g)
		if err != nil {
			return nil, err
		}
		return &v2Limiter{m: m, dir: filepath.Join("/sys/fs/cgroup", g)}, nil
	}
	cg, err := cgroup1.Load(cgroup1.NestedPath(group), cgroup1.WithHierarchy(memCPUHierarchy))
	if err != nil {
		return nil, err
	}
	return &v1Limiter{cg: cg}, nil
}

// CgroupSupport reports whether this host lets petrel create cgroups with
// memory and CPU limits; the error says why not (describe shows it).
func CgroupSupport() error {
	l, err := newLimiter(fmt.Sprintf("petrel/probe-%d", os.Getpid()), Limits{MemoryBytes: 64 << 20, CPUMillicores: 1000})
	if err != nil {
		return err
	}
	l.Delete()
	return nil
}

// newLimiter creates the cgroup named group (nested under this process's
// own cgroup, so it works inside a container that delegates its subtree).
func newLimiter(group string, lim Limits) (limiter, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return newV2(group, lim)
	case cgroups.Legacy, cgroups.Hybrid:
		return newV1(group, lim)
	}
	return nil, fmt.Errorf("no cgroup hierarchy is mounted")
}

type v1Limiter struct {
	cg  cgroup1.Cgroup
	dir string // memory controller directory, for memory.oom_control
}

func memCPUHierarchy() ([]cgroup1.Subsystem, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, err
	}
	var out []cgroup1.Subsystem
	for _, s := range all {
		if s.Name() == cgroup1.Memory || s.Name() == cgroup1.Cpu {
			out = append(out, s)
		}
	}
	return out, nil
}

func newV1(group string, lim Limits) (limiter, error) {
	res := &specs.LinuxResources{}
	if lim.MemoryBytes > 0 {
		m := lim.MemoryBytes
		res.Memory = &specs.LinuxMemory{Limit: &m, Swap: &m}
	}
	if lim.CPUMillicores > 0 {
		q, p := lim.CPUMillicores*cpuPeriodMicros/1000, uint64(cpuPeriodMicros)
		res.CPU = &specs.LinuxCPU{Quota: &q, Period: &p}
	}
	path := cgroup1.NestedPath(group)
	cg, err := cgroup1.New(path, res, cgroup1.WithHierarchy(memCPUHierarchy))
	if err != nil && lim.MemoryBytes > 0 && strings.Contains(err.Error(), "memsw") {
		// No swap accounting on this kernel: set the memory limit alone.
		res.Memory.Swap = nil
		cg, err = cgroup1.New(path, res, cgroup1.WithHierarchy(memCPUHierarchy))
	}
	if err != nil {
		return nil, fmt.Errorf("create cgroup v1 %s: %w", group, err)
	}
	l := &v1Limiter{cg: cg}
	if p, err := path(cgroup1.Memory); err == nil {
		for _, s := range cg.Subsystems() {
			if pt, ok := s.(interface{ Path(string) string }); ok && s.Name() == cgroup1.Memory {
				l.dir = pt.Path(p)
			}
		}
	}
	return l, nil
}

func (l *v1Limiter) Add(pid int) error { return l.cg.AddProc(uint64(pid)) }
func (l *v1Limiter) OOMKilled() bool {
	return readKeyed(filepath.Join(l.dir, "memory.oom_control"), "oom_kill") > 0
}
func (l *v1Limiter) Delete() { _ = l.cg.Delete() }
func (l *v1Limiter) KillAll() {
	killPids(func() []int {
		procs, _ := l.cg.Processes(cgroup1.Memory, true)
		out := make([]int, len(procs))
		for i, p := range procs {
			out[i] = p.Pid
		}
		return out
	})
}

type v2Limiter struct {
	m   *cgroup2.Manager
	dir string
}

func newV2(group string, lim Limits) (limiter, error) {
	parent, err := cgroup2.NestedGroupPath("")
	if err != nil {
		return nil, err
	}
	g := filepath.Join(parent, group)
	res := &cgroup2.Resources{}
	if lim.MemoryBytes > 0 {
		m, zero := lim.MemoryBytes, int64(0)
		res.Memory = &cgroup2.Memory{Max: &m, Swap: &zero}
	}
	if lim.CPUMillicores > 0 {
		q, p := lim.CPUMillicores*cpuPeriodMicros/1000, uint64(cpuPeriodMicros)
		res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&q, &p)}
	}
	m, err := cgroup2.NewManager("/sys/fs/cgroup", g, res)
	if err != nil {
		return nil, fmt.Errorf("create cgroup v2 %s: %w", g, err)
	}
	return &v2Limiter{m: m, dir: filepath.Join("/sys/fs/cgroup", g)}, nil
}

func (l *v2Limiter) Add(pid int) error { return l.m.AddProc(uint64(pid)) }
func (l *v2Limiter) OOMKilled() bool {
	return readKeyed(filepath.Join(l.dir, "memory.events"), "oom_kill") > 0
}
func (l *v2Limiter) Delete() { _ = l.m.Delete() }
func (l *v2Limiter) KillAll() {
	killPids(func() []int {
		procs, _ := l.m.Procs(true)
		out := make([]int, len(procs))
		for i, p := range procs {
			out[i] = int(p)
		}
		return out
	})
}

// readKeyed reads "key value" lines (memory.oom_control, memory.events).
func readKeyed(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
