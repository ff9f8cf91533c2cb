package engine

import (
	"context"

	"github.com/petrel-dev/petrel/internal/engine/node"
)

// The pod layer's types and entry points under the names the rest of
// petrel (the server, the shim command, tests) has always used.
type (
	// GPU is one device the local engine can hand out whole.
	GPU = node.GPU
	// ShimPids identifies an attempt's shim and workload processes.
	ShimPids = node.ShimPids
)

// LogFile is a pod's output file in its directory.
const LogFile = node.LogFile

// RunShim is the shim's main (`petrel shim DIR`).
func RunShim(dir string) error { return node.RunShim(dir) }

// CgroupSupport says why CPU and memory limits cannot be enforced on this
// host, or nil.
func CgroupSupport() error { return node.CgroupSupport() }

// FakeGPUs returns n fake devices (tests, PETREL_FAKE_GPUS).
func FakeGPUs(n int) []GPU { return node.FakeGPUs(n) }

// DiscoverGPUs lists this machine's NVIDIA GPUs (nvidia-smi).
func DiscoverGPUs(ctx context.Context) ([]GPU, error) { return node.DiscoverGPUs(ctx) }
