package rules

import (
	"regexp"
	"strconv"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

// nprocFlag is torchrun's --nproc-per-node (or --nproc_per_node) N.
var nprocFlag = regexp.MustCompile(`--nproc[-_]per[-_]node[ =]([0-9]+)\b`)

func init() {
	register(&lint.Rule{
		ID:       "PTL-DST-002",
		Severity: backend.SeverityWarning,
		Summary:  "processes per worker (torchrun --nproc-per-node / PET_NPROC_PER_NODE) differ from the GPUs the pod gets",
		Why: "torchrun starts one process per GPU it is told about: more processes than GPUs makes them share devices " +
			"(NCCL fails with \"Duplicate GPU detected\" or runs out of memory), fewer leaves GPUs the pod holds idle.",
		Fix:   "make nproc-per-node equal the pod's GPU limit (or use --nproc-per-node=gpu)",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, false) {
				names := gpuNames(c.c)
				if len(names) == 0 {
					continue
				}
				q := c.c.Resources.Limits[names[0]]
				gpus := q.Value()
				if gpus == 0 {
					continue
				}
				n, path := int64(0), c.path
				for i, e := range c.c.Env {
					if e.Name == "PET_NPROC_PER_NODE" && e.ValueFrom == nil {
						if v, err := strconv.ParseInt(e.Value, 10, 64); err == nil {
							n, path = v, c.path.Key("env", i, "value")
						}
					}
				}
				if m := nprocFlag.FindStringSubmatch(cmdline(c.c.Command, c.c.Args)); m != nil {
					n, _ = strconv.ParseInt(m[1], 10, 64)
					path = c.path.Key("command")
				}
				if n == 0 || n == gpus {
					continue
				}
				what := "processes share GPUs"
				if n < gpus {
					what = "GPUs sit idle"
				}
				p.Report(c.w.Object, path, "", "container %q runs %d processes per worker on %d %s: %s", c.c.Name, n, gpus, names[0], what)
			}
		},
	})
}
