package expansion

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
		"--port=$(DATA_DIR)":     "--port=/v/data",
	}
	for in, want := range cases {
		if got := Expand(in, lookup); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}
