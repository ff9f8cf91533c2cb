package lint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestNodeJSONMatchesYAMLSemantics(t *testing.T) {
	src := `base: &base {cpu: 500m, replicas: 0x10}
spec:
  <<: *base
  gpu: 0.5
  ratio: 1e3
  octal: 0o17
  on: true
  off: False
  none: ~
  quoted: "8"
  text: "tab\there \"q\" é"
  list: [1, two, *base]
`
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := nodeJSON(&buf, &n, 0); err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", buf.String(), err)
	}
	want := map[string]any{
		"base": map[string]any{"cpu": "500m", "replicas": 16.0},
		"spec": map[string]any{"cpu": "500m", "replicas": 16.0, "gpu": 0.5, "ratio": 1000.0, "octal": 15.0,
			"on": true, "off": false, "none": nil, "quoted": "8", "text": "tab\there \"q\" é",
			"list": []any{1.0, "two", map[string]any{"cpu": "500m", "replicas": 16.0}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"gpu":0.5`)) {
		t.Errorf("0.5 not kept as written: %s", buf.String())
	}
}

func TestNodeJSONRejectsComplexKeys(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("? [a, b]\n: 1\n"), &n); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := nodeJSON(&buf, &n, 0); err == nil {
		t.Error("a list as a mapping key was accepted")
	}
}

func TestTemplateKeysAreReportedAtTheirLine(t *testing.T) {
	src := []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers:\n  - name: c\n    {{ .Values.extra }}: 1\n")
	d := &decoder{src: Source{Name: "t.yaml", Data: src}}
	d.decode()
	if len(d.findings) != 1 || d.findings[0].RuleID != RuleInputSchema.ID || d.findings[0].Line != 11 || d.findings[0].Col != 5 {
		t.Fatalf("findings = %+v, want PTL-IN-004 at 11:5", d.findings)
	}
	if len(d.objects) != 1 || d.objects[0].Name != "p" {
		t.Errorf("objects = %d, want pod p still read", len(d.objects))
	}
}

func TestAliasBombIsRefused(t *testing.T) {
	src := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nx0: &a0 [" + strings.Repeat("xxxxxxxxxx,", 9) + "x]\n"
	for i := 1; i <= 9; i++ {
		src += fmt.Sprintf("x%d: &a%d [%s*a%d]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d,", i-1), 9), i-1)
	}
	d := &decoder{src: Source{Name: "bomb.yaml", Data: []byte(src)}}
	d.decode()
	if len(d.findings) != 1 || d.findings[0].RuleID != RuleInputSchema.ID || !strings.Contains(d.findings[0].Message, "MiB") {
		t.Fatalf("findings = %+v, want one PTL-IN-004 about the size", d.findings)
	}
}
