package katib

import (
	"fmt"
	"testing"
)

func TestParseLine(t *testing.T) {
	cases := map[string]string{
		"epoch=3 loss=0.41 accuracy=0.93":    "[{epoch 3} {loss 0.41} {accuracy 0.93}]",
		"step = 10, lr=1e-3":                 "[{step 10} {lr 0.001}]",
		"no metrics here":                    "[]",
		"name=abc value=-2.5":                "[{value -2.5}]",
		"held-out accuracy: 0.97 top-1=0.97": "[{top-1 0.97}]",
	}
	for in, want := range cases {
		got := ParseLine(in)
		if s := fmt.Sprint(got); s != want && !(len(got) == 0 && want == "[]") {
			t.Errorf("ParseLine(%q) = %s, want %s", in, s, want)
		}
	}
}
