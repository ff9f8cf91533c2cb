// Package root assembles petrel's command tree. Each verb lives in its own
// package under internal/cli and is added here.
package root

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/cli/factory"
)

// Version is set at build time with -ldflags "-X …/root.Version=v0.1.0".
var Version = "v0.1.0-dev"

// NewCmd returns the root command with every subcommand.
func NewCmd(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "petrel",
		Short: "Run ML training jobs and inference services on this machine or on Kubernetes",
		Long: `petrel runs machine-learning workloads from one declarative spec:
on this machine through its embedded local engine (the default), or on a
Kubernetes cluster with --target kubernetes.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.Target, "target", envOr("PETREL_TARGET", "local"), "where workloads run: local or kubernetes (env PETREL_TARGET)")
	pf.StringVar(&f.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	pf.StringVar(&f.Context, "context", "", "kubeconfig context to use")
	pf.StringVarP(&f.Namespace, "namespace", "n", "", "Kubernetes namespace (default: the context's)")
	pf.StringVar(&f.Home, "home", factory.DefaultHome(), "local engine state directory (env PETREL_HOME)")

	for _, add := range subcommands {
		cmd.AddCommand(add(f))
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print petrel's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(f.IO.Out, "petrel %s (api %s)\n", Version, "petrel.dev/v1alpha1")
		},
	})
	return cmd
}

// subcommands lists the constructors of every verb (see commands.go).
var subcommands []func(*factory.Factory) *cobra.Command
