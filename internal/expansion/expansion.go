// Package expansion expands $(VAR) references in command, args, env values
// and workingDir with the kubelet's semantics
// (k8s.io/kubernetes third_party/forked/golang/expansion), so the local
// engine runs a spec exactly as a cluster would.
package expansion

import "strings"

// Expand replaces $(VAR) references in s with values from lookup: "$$" is
// an escaped "$", a reference to an undefined variable and an unterminated
// "$(" are left unchanged, and any other "$" is kept.
func Expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
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

// Map returns a lookup function over m.
func Map(m map[string]string) func(string) (string, bool) {
	return func(n string) (string, bool) { v, ok := m[n]; return v, ok }
}
