package node

import "testing"

func TestExpandEnvSeesEarlierVariables(t *testing.T) {
	out, m := expandEnv(map[string]string{"HOME": "/h"}, [][2]string{{"A", "$(HOME)/a"}, {"B", "$(A)/b"}, {"C", "$(D)"}, {"D", "d"}})
	if m["B"] != "/h/a/b" || out[1][1] != "/h/a/b" {
		t.Fatalf("B = %q", m["B"])
	}
	if m["C"] != "$(D)" {
		t.Fatalf("C referenced a later variable: %q", m["C"])
	}
}
