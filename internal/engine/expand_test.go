package engine

import "testing"

func TestExpandFollowsKubeletSemantics(t *testing.T) {
	env := map[string]string{"DATA_DIR": "/v/data", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	cases := map[string]string{
		"$(DATA_DIR)/digits.csv": "/v/data/digits.csv",
		"$$(DATA_DIR)":           "$(DATA_DIR)",
		"$(UNDEFINED)/x":         "$(UNDEFINED)/x",
		"a$(EMPTY)b":             "ab",
		"$(DATA_DIR":             "$(DATA_DIR",
		"cost: $5":               "cost: $5",
		"trailing $":             "trailing $",
		"$$$(DATA_DIR)":          "$/v/data",
		"no refs":                "no refs",
	}
	for in, want := range cases {
		if got := Expand(in, lookup); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpandEnvSeesEarlierVariables(t *testing.T) {
	out, m := expandEnv(map[string]string{"HOME": "/h"}, [][2]string{{"A", "$(HOME)/a"}, {"B", "$(A)/b"}, {"C", "$(D)"}, {"D", "d"}})
	if m["B"] != "/h/a/b" || out[1][1] != "/h/a/b" {
		t.Fatalf("B = %q", m["B"])
	}
	if m["C"] != "$(D)" {
		t.Fatalf("C referenced a later variable: %q", m["C"])
	}
}
