package node

import "github.com/petrel-dev/petrel/internal/expansion"

// expandEnv builds a container environment the way the kubelet does: each
// variable's value may reference variables defined before it (and the
// base environment); it returns the ordered list and a lookup map.
func expandEnv(base map[string]string, vars [][2]string) ([][2]string, map[string]string) {
	m := make(map[string]string, len(base)+len(vars))
	for k, v := range base {
		m[k] = v
	}
	out := make([][2]string, 0, len(vars))
	for _, kv := range vars {
		v := expansion.Expand(kv[1], expansion.Map(m))
		m[kv[0]] = v
		out = append(out, [2]string{kv[0], v})
	}
	return out, m
}
