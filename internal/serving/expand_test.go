package serving

import "testing"

func TestExpandFollowsKubeletRules(t *testing.T) {
	env := map[string]string{"PORT": "8123", "MODEL_DIR": "/v/models"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"--port=$(PORT)":          "--port=8123",
		"$(MODEL_DIR)/model.json": "/v/models/model.json",
		"$$(PORT)":                "$(PORT)",
		"$(UNSET)":                "$(UNSET)",
		"cost $5":                 "cost $5",
		"tail $":                  "tail $",
		"open $(PORT":             "open $(PORT",
	} {
		if got := Expand(in, lookup); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}
