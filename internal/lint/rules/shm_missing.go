package rules

import (
	"regexp"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

// dataLoaderCmd matches commands that start DataLoader worker processes.
var dataLoaderCmd = regexp.MustCompile(`(?i)num[-_]workers|\bdataloader\b|--workers[ =][1-9]`)

func init() {
	register(&lint.Rule{
		ID:       "PTL-SHM-001",
		Severity: backend.SeverityWarning,
		Summary:  "GPU or PyTorch DataLoader container without a memory-backed emptyDir at /dev/shm",
		Why: "Containers get a 64Mi /dev/shm. PyTorch DataLoader workers pass batches through it and NCCL uses it between " +
			"GPUs, so training dies with \"Bus error\" / \"insufficient shared memory (shm)\" as soon as batches grow.",
		Fix:   "add volumes: [{name: dshm, emptyDir: {medium: Memory, sizeLimit: 8Gi}}] and mount it at /dev/shm (it counts against the memory limit)",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, false) {
				if c.w.PodSpec.HostIPC || hasShm(c.w.PodSpec, c.c) {
					continue
				}
				why := ""
				if names := gpuNames(c.c); len(names) > 0 {
					why = "it uses " + string(names[0])
				} else if m := dataLoaderCmd.FindString(cmdline(c.c.Command, c.c.Args)); m != "" {
					why = "its command starts DataLoader workers (" + m + ")"
				} else {
					continue
				}
				at := c.path.Key("volumeMounts")
				if !c.w.Has(at) {
					at = c.path
				}
				p.Report(c.w.Object, at, "",
					"container %q has no memory-backed /dev/shm although %s; the 64Mi default makes DataLoader workers and NCCL fail with \"Bus error\"",
					c.c.Name, why)
			}
		},
	})
}

// hasShm reports whether c mounts an emptyDir with medium Memory at /dev/shm.
func hasShm(spec *corev1.PodSpec, c *corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath != "/dev/shm" && m.MountPath != "/dev/shm/" {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory {
				return true
			}
		}
	}
	return false
}
