package lint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// nodeJSON writes a YAML node tree as JSON, the way the API server reads a
// YAML manifest (sigs.k8s.io/yaml semantics): tagged scalars keep their
// types, mapping keys become strings, aliases and merge keys (<<) are
// followed. Writing the tree directly instead of decoding it into maps
// first halves lint's allocations.
func nodeJSON(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > 100 {
		return fmt.Errorf("nesting deeper than 100 levels")
	}
	if buf.Len() > maxObjectJSON {
		// Aliases can make a small document expand exponentially; the API
		// server would refuse an object this large anyway (etcd's limit is
		// 1.5 MiB).
		return fmt.Errorf("the object expands to more than %d MiB (aliases referring to aliases?)", maxObjectJSON>>20)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return nodeJSON(buf, n.Content[0], depth+1)
	case yaml.AliasNode:
		return nodeJSON(buf, n.Alias, depth+1)
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := nodeJSON(buf, c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.MappingNode:
		buf.WriteByte('{')
		first := true
		var err error
		var pairs func(m *yaml.Node, depth int)
		pairs = func(m *yaml.Node, depth int) {
			for i := 0; i+1 < len(m.Content) && err == nil; i += 2 {
				k, v := m.Content[i], m.Content[i+1]
				if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
					for v.Kind == yaml.AliasNode {
						v = v.Alias
					}
					switch v.Kind {
					case yaml.MappingNode:
						pairs(v, depth+1)
					case yaml.SequenceNode:
						for _, c := range v.Content {
							for c.Kind == yaml.AliasNode {
								c = c.Alias
							}
							if c.Kind == yaml.MappingNode {
								pairs(c, depth+1)
							}
						}
					}
					continue
				}
				if k.Kind != yaml.ScalarNode {
					err = &keyError{node: k}
					return
				}
				if !first {
					buf.WriteByte(',')
				}
				first = false
				writeJSONString(buf, k.Value)
				buf.WriteByte(':')
				err = nodeJSON(buf, v, depth+1)
			}
		}
		pairs(n, depth)
		buf.WriteByte('}')
		return err
	case yaml.ScalarNode:
		scalarJSON(buf, n)
		return nil
	}
	buf.WriteString("null")
	return nil
}

// maxObjectJSON bounds one object's JSON form, in bytes.
const maxObjectJSON = 4 << 20

// keyError is a mapping key that is not a scalar (often an unrendered
// template such as {{ .Values.x }}).
type keyError struct{ node *yaml.Node }

func (e *keyError) Error() string {
	return fmt.Sprintf("a mapping key is a %s, not a plain value (an unrendered template?)", nodeKindName(e.node))
}

func scalarJSON(buf *bytes.Buffer, n *yaml.Node) {
	switch n.ShortTag() {
	case "!!null":
		buf.WriteString("null")
		return
	case "!!bool":
		if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
			buf.WriteString(strconv.FormatBool(b))
			return
		}
	case "!!int":
		if i, err := strconv.ParseInt(strings.ReplaceAll(strings.Replace(n.Value, "0o", "0", 1), "_", ""), 0, 64); err == nil {
			buf.WriteString(strconv.FormatInt(i, 10))
			return
		}
	case "!!float":
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			// Keep the text as written when it is valid JSON (1.0, 0.5),
			// so quantities such as 0.5 reach resource.Quantity unchanged.
			if json.Valid([]byte(n.Value)) {
				buf.WriteString(n.Value)
			} else {
				buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
			}
			return
		}
	}
	writeJSONString(buf, n.Value)
}

func writeJSONString(buf *bytes.Buffer, s string) {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		buf.WriteByte('"')
		buf.WriteString(s)
		buf.WriteByte('"')
		return
	}
	b, _ := json.Marshal(s)
	buf.Write(b)
}
