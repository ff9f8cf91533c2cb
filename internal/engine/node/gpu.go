package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// GPU is one device the local engine can hand out whole.
type GPU struct {
	Index int    `json:"index"`
	UUID  string `json:"uuid"`
	Name  string `json:"name"`
	// MemoryBytes is the device's total memory in bytes.
	MemoryBytes int64 `json:"memoryBytes"`
}

// DiscoverGPUs lists NVIDIA GPUs the way the device plugin sees them, via
// `nvidia-smi --query-gpu` (present wherever the driver is). PETREL_FAKE_GPUS=N
// injects N fake devices instead (tests; this is how GPU waiting and
// rejection are tested without hardware). No driver means no GPUs.
func DiscoverGPUs(ctx context.Context) ([]GPU, error) {
	if v := os.Getenv("PETREL_FAKE_GPUS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("PETREL_FAKE_GPUS=%q: want a count such as 2", v)
		}
		return FakeGPUs(n), nil
	}
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	return parseNvidiaSMI(string(out))
}

// parseNvidiaSMI parses "index, uuid, name, memory.total [MiB]" CSV lines.
func parseNvidiaSMI(out string) ([]GPU, error) {
	var gpus []GPU
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 4 {
			return nil, fmt.Errorf("nvidia-smi: unexpected line %q", line)
		}
		idx, err := strconv.Atoi(strings.TrimSpace(f[0]))
		if err != nil {
			return nil, fmt.Errorf("nvidia-smi: bad index in %q", line)
		}
		mib, _ := strconv.ParseInt(strings.TrimSpace(f[3]), 10, 64)
		gpus = append(gpus, GPU{Index: idx, UUID: strings.TrimSpace(f[1]), Name: strings.TrimSpace(f[2]), MemoryBytes: mib << 20})
	}
	return gpus, nil
}

// FakeGPUs returns n fake devices for tests.
func FakeGPUs(n int) []GPU {
	out := make([]GPU, n)
	for i := range out {
		out[i] = GPU{Index: i, UUID: fmt.Sprintf("GPU-fake-%04d", i), Name: "Fake GPU", MemoryBytes: 16 << 30}
	}
	return out
}

// Allocator hands out whole GPUs exclusively, as the device plugin does
// for an extended resource: a device belongs to at most one pod (a job's
// attempt or a service's replica). It has its own lock, so replicas
// (started under their service's lock) and jobs (under the engine's) share
// it without a lock order between the two.
type Allocator struct {
	mu    sync.Mutex
	all   []GPU
	owner map[int]string // index → the pod holding it
}

// NewAllocator hands out gpus.
func NewAllocator(gpus []GPU) *Allocator {
	return &Allocator{all: gpus, owner: map[int]string{}}
}

// Total is the number of devices.
func (a *Allocator) Total() int { return len(a.all) }

// Free is the number of devices no pod holds.
func (a *Allocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.all) - len(a.owner)
}

// Allocate returns n free device indices for owner, lowest first, or nil
// (all or nothing: a pod never holds part of what it asked for).
func (a *Allocator) Allocate(n int, owner string) []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n > len(a.all)-len(a.owner) {
		return nil
	}
	var got []int
	for _, g := range a.all {
		if _, used := a.owner[g.Index]; !used {
			got = append(got, g.Index)
			if len(got) == n {
				break
			}
		}
	}
	for _, i := range got {
		a.owner[i] = owner
	}
	return got
}

// Reserve marks indices as held by owner (re-adoption after a restart).
func (a *Allocator) Reserve(idx []int, owner string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, i := range idx {
		a.owner[i] = owner
	}
}

// Release frees every device owner holds and reports whether it held any.
func (a *Allocator) Release(owner string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	freed := false
	for i, o := range a.owner {
		if o == owner {
			delete(a.owner, i)
			freed = true
		}
	}
	return freed
}

// GPUEnv is the device environment of a pod given gpus on a machine with
// total devices, as the NVIDIA container toolkit sets it: a pod that asked
// for none sees none (NVIDIA_VISIBLE_DEVICES=void), like a pod without a
// GPU limit. Nothing is set on a machine without GPUs.
func GPUEnv(total int, gpus []int) [][2]string {
	if total == 0 && len(gpus) == 0 {
		return nil
	}
	dev, nv := visibleDevices(gpus), visibleDevices(gpus)
	if len(gpus) == 0 {
		nv = "void"
	}
	return [][2]string{{"CUDA_VISIBLE_DEVICES", dev}, {"NVIDIA_VISIBLE_DEVICES", nv}}
}

// Admit is the pod layer's admission of a template: a pod asking for more
// GPUs than this machine has can never run, so the workload is refused at
// apply (a cluster would leave it Pending; there is no other node here).
func (n *Node) Admit(kind, name string, t *v1alpha1.PodTemplate) error {
	if want := int(t.Resources.GPU); want > n.GPUs.Total() {
		return fmt.Errorf("%s %q asks for %d GPUs (%s) but this machine has %d: it can never run here; lower spec.resources.gpu or use --target kubernetes",
			kind, name, want, t.Resources.GPUName(), n.GPUs.Total())
	}
	return nil
}

// visibleDevices renders indices as CUDA_VISIBLE_DEVICES expects ("0,2").
func visibleDevices(idx []int) string {
	s := append([]int(nil), idx...)
	sort.Ints(s)
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}
