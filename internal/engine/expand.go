package engine

import "strings"

// Expand replaces $(VAR) references in s with values from lookup, with the
// kubelet's semantics (k8s.io/kubernetes third_party/forked/golang/expansion):
// "$$" is an escaped "$", a reference to an undefined variable and an
// unterminated "$(" are left unchanged, and any other "$" is kept.
func Expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

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
		v := Expand(kv[1], func(n string) (string, bool) { x, ok := m[n]; return x, ok })
		m[kv[0]] = v
		out = append(out, [2]string{kv[0], v})
	}
	return out, m
}
