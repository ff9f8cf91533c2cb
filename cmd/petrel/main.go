// Command petrel runs ML training jobs and inference services from one spec,
// on the local engine or on Kubernetes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/root"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	f := &factory.Factory{IO: factory.System()}
	cmd := root.NewCmd(f)
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		// An exit error without a message has said everything already
		// (or, as logs -f ended by Ctrl-C, has nothing to say).
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "error:", msg)
		}
		if e, ok := err.(interface{ ExitCode() int }); ok {
			os.Exit(e.ExitCode())
		}
		os.Exit(1)
	}
}
