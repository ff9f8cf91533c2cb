package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
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

// gpuAllocator hands out whole GPUs exclusively, as the device plugin does
// for an extended resource: a device belongs to at most one attempt.
type gpuAllocator struct {
	all   []GPU
	owner map[int]string // index → "job/attempt" holding it
}

func newGPUAllocator(gpus []GPU) *gpuAllocator {
	return &gpuAllocator{all: gpus, owner: map[int]string{}}
}

func (a *gpuAllocator) total() int { return len(a.all) }
func (a *gpuAllocator) free() int  { return len(a.all) - len(a.owner) }

// allocate returns n free device indices for owner, lowest first, or nil.
func (a *gpuAllocator) allocate(n int, owner string) []int {
	if n > a.free() {
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

// reserve marks indices as held by owner (re-adoption after a restart).
func (a *gpuAllocator) reserve(idx []int, owner string) {
	for _, i := range idx {
		a.owner[i] = owner
	}
}

func (a *gpuAllocator) release(owner string) {
	for i, o := range a.owner {
		if o == owner {
			delete(a.owner, i)
		}
	}
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
