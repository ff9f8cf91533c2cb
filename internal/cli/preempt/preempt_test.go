package preempt

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/petrel-dev/petrel/internal/cli/factory"
)

// TestPreemptArgs: job NAME and job/NAME name the job; other kinds and a
// missing name are refused with the usage.
func TestPreemptArgs(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"kind and name", []string{"job", "ddp"}, "ddp", ""},
		{"kind/name", []string{"job/ddp"}, "ddp", ""},
		{"service refused", []string{"service", "s"}, "", "works on jobs"},
		{"name missing", []string{"job"}, "", "name required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			var got *Options
			cmd := NewCmd(&factory.Factory{IO: &factory.IOStreams{Out: &out, ErrOut: &out}}, func(_ context.Context, o *Options) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got == nil || got.Name != tt.want {
				t.Fatalf("err = %v, options %+v, want name %q", err, got, tt.want)
			}
		})
	}
}
