// Package server is the `petrel server` command (run, stop, status) and
// the hidden `petrel shim` mode that owns one attempt's process.
package server

import (
	"context"
	"fmt"
	"github.com/petrel-dev/petrel/internal/serving"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/engine"
	srv "github.com/petrel-dev/petrel/internal/server"
)

// Options are the server's settings.
type Options struct {
	IO          *factory.IOStreams
	Home        string
	BackoffBase time.Duration
	BackoffMax  time.Duration
	MaxReplicas int32
	Version     string
}

func envDuration(key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// NewCmd returns `petrel server` with its stop and status subcommands.
func NewCmd(f *factory.Factory, version string) *cobra.Command {
	opts := &Options{IO: f.IO, Version: version}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the local engine (started in the background by other commands when needed)",
		Long: `Run the local engine: the control plane that holds state in
$PETREL_HOME/state.db, runs workloads and serves the API on the unix socket
$PETREL_HOME/petrel.sock (mode 0600, owner only). Every other command starts
it in the background when none is running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Home = f.Home
			return run(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.BackoffBase, "backoff-base", envDuration("PETREL_BACKOFF_BASE", 10*time.Second), "first retry delay after a failed attempt, doubling per failure (env PETREL_BACKOFF_BASE)")
	maxReplicas := int32(engine.DefaultMaxReplicas)
	if v, err := strconv.ParseInt(os.Getenv("PETREL_MAX_REPLICAS"), 10, 32); err == nil && v > 0 {
		maxReplicas = int32(v)
	}
	cmd.Flags().Int32Var(&opts.MaxReplicas, "max-replicas", maxReplicas, "the most replicas one service may ask for or be scaled to on this machine (env PETREL_MAX_REPLICAS)")
	cmd.Flags().DurationVar(&opts.BackoffMax, "backoff-max", envDuration("PETREL_BACKOFF_MAX", 10*time.Minute), "cap of the retry delay, as Kubernetes v1.37's MaxJobPodFailureBackOff (env PETREL_BACKOFF_MAX)")
	cmd.AddCommand(&cobra.Command{
		Use:   "stop",
		Short: "Stop the local engine's server (running workloads keep running and are re-adopted at the next start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := srv.NewClient(f.Home)
			if _, err := c.Ping(cmd.Context()); err != nil {
				fmt.Fprintln(f.IO.ErrOut, "no petrel server is running on", f.Home)
				return nil
			}
			if err := c.Shutdown(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(f.IO.ErrOut, "petrel server stopped")
			return nil
		},
	})
	cmd.AddCommand(newInstallCmd(f))
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show whether the server runs, its GPUs and whether limits are enforced",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := srv.NewClient(f.Home).Ping(cmd.Context())
			if err != nil {
				return fmt.Errorf("no petrel server is running on %s", f.Home)
			}
			fmt.Fprintf(f.IO.Out, "pid:     %d\nversion: %s\nsocket:  %s\ngpus:    %d\nlimits:  %s\n", info.PID, info.Version, srv.SocketPath(f.Home), len(info.GPUs), info.Limits)
			return nil
		},
	})
	return cmd
}

func run(ctx context.Context, opts *Options) error {
	logger := log.New(opts.IO.ErrOut, "petrel-server ", log.LstdFlags)
	unlock, err := srv.Lock(opts.Home)
	if err != nil {
		return err
	}
	defer unlock()
	eng, err := engine.New(engine.Config{Home: opts.Home, BackoffBase: opts.BackoffBase, BackoffMax: opts.BackoffMax, MaxReplicas: opts.MaxReplicas, Logf: logger.Printf})
	if err != nil {
		return err
	}
	defer eng.Close()
	logger.Printf("serving on %s (pid %d, %d GPUs, limits: %v)", srv.SocketPath(opts.Home), os.Getpid(), len(eng.GPUs()), limitsText(eng.LimitsError()))
	err = srv.Run(ctx, opts.Home, opts.Version, eng)
	logger.Printf("stopped")
	return err
}

func limitsText(err error) string {
	if err == nil {
		return "enforced with cgroups"
	}
	return "not enforced: " + err.Error()
}

// NewLBCmd returns the hidden `petrel lb DIR` mode: a service's load
// balancer as its own process, outliving the server (see serving.RunLB).
func NewLBCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "lb DIR",
		Short:  "Serve one service's port (internal)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return serving.RunLB(args[0])
		},
	}
}

// NewShimCmd returns the hidden `petrel shim DIR` mode (see engine.RunShim).
func NewShimCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "shim DIR",
		Short:  "Own one attempt's process (internal)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return engine.RunShim(args[0])
		},
	}
}
