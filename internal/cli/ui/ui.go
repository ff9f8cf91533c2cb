// Package ui is `petrel ui`: it prints the dashboard's URL (with its
// token) and opens a browser when one is available. On the local target
// the dashboard is served by `petrel server`; with --target kubernetes
// this command serves the same pages from the cluster until interrupted.
package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/server"
	dash "github.com/petrel-dev/petrel/internal/ui"
)

// Options holds everything ui needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	Home    string
	Target  string
	// Open is "auto" (a browser when DISPLAY or WAYLAND_DISPLAY is set
	// and xdg-open exists), "always" or "never".
	Open string
	// Port is where --target kubernetes listens on 127.0.0.1 (0: any).
	Port int
}

// NewCmd returns `petrel ui`. runF replaces the run function in tests.
func NewCmd(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Print the dashboard's URL and open it in a browser",
		Long: `Print the URL of the web dashboard (jobs with their curves, logs and
attempts; services with replicas, scaling and traffic; volumes) and open it
in a browser when one is available. The URL carries a token, kept in
$PETREL_HOME/ui-token (mode 0600): the dashboard listens on 127.0.0.1 only
and refuses requests without it.

On the local target the dashboard is part of ` + "`petrel server`" + ` (started when
needed). With --target kubernetes, this command serves the same pages from
the cluster on 127.0.0.1 until interrupted.`,
		Example: `  petrel ui
  petrel ui --open never
  petrel ui --target kubernetes --port 8765`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Home, opts.Target = f.Home, f.Target
			switch opts.Open {
			case "auto", "always", "never":
			default:
				return fmt.Errorf("--open must be auto, always or never, not %q", opts.Open)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Open, "open", "auto", "open a browser: auto (when a display and xdg-open exist), always or never")
	cmd.Flags().IntVar(&opts.Port, "port", 0, "with --target kubernetes: the port on 127.0.0.1 to serve on (0 = any free port)")
	return cmd
}

// Run prints the URL (to stdout) and opens a browser; on Kubernetes it
// serves until ctx ends.
func Run(ctx context.Context, opts *Options) error {
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	if opts.Target == "" || opts.Target == "local" {
		c, ok := b.(*server.Client)
		if !ok {
			return errors.New("the local dashboard is served by petrel server, which this backend is not")
		}
		info, err := c.Ping(ctx)
		if err != nil {
			return err
		}
		if info.UI == "" {
			return fmt.Errorf("petrel server runs without its dashboard: %s", info.UIError)
		}
		tok, err := dash.ReadToken(opts.Home)
		if err != nil {
			return fmt.Errorf("read the dashboard token: %w", err)
		}
		show(opts, dash.URLWithToken(info.UI, tok))
		return nil
	}
	tok, err := dash.LoadToken(opts.Home)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(dash.NewCollector(b, nil))
	d, err := dash.New(dash.Options{Source: b, Token: tok, Target: opts.Target, Gatherer: reg})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base, err := d.Listen(ctx, "127.0.0.1:"+strconv.Itoa(opts.Port))
	if err != nil {
		return err
	}
	show(opts, dash.URLWithToken(base, tok))
	fmt.Fprintln(opts.IO.ErrOut, "serving the dashboard from the cluster; Ctrl-C stops it")
	<-ctx.Done()
	return nil
}

// show prints url and, when allowed and possible, opens it.
func show(opts *Options, url string) {
	fmt.Fprintln(opts.IO.Out, url)
	if opts.Open == "never" {
		return
	}
	display := os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
	if opts.Open == "auto" && !display {
		return
	}
	opener, err := exec.LookPath("xdg-open")
	if err != nil {
		if opts.Open == "always" {
			fmt.Fprintln(opts.IO.ErrOut, "no xdg-open found: open the URL above in a browser")
		}
		return
	}
	cmd := exec.Command(opener, url)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "could not open a browser: %v\n", err)
		return
	}
	go func() { _ = cmd.Wait() }()
}
