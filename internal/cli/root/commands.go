package root

import (
	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/cli/apply"
	"github.com/petrel-dev/petrel/internal/cli/deletecmd"
	"github.com/petrel-dev/petrel/internal/cli/describe"
	diagnosecmd "github.com/petrel-dev/petrel/internal/cli/diagnose"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
	"github.com/petrel-dev/petrel/internal/cli/lint"
	"github.com/petrel-dev/petrel/internal/cli/logs"
	"github.com/petrel-dev/petrel/internal/cli/metrics"
	"github.com/petrel-dev/petrel/internal/cli/preempt"
	"github.com/petrel-dev/petrel/internal/cli/render"
	"github.com/petrel-dev/petrel/internal/cli/scale"
	"github.com/petrel-dev/petrel/internal/cli/serve"
	servercmd "github.com/petrel-dev/petrel/internal/cli/server"
	"github.com/petrel-dev/petrel/internal/cli/train"
	uicmd "github.com/petrel-dev/petrel/internal/cli/ui"
	"github.com/petrel-dev/petrel/internal/cli/wait"
)

// Each verb package adds its constructor here, one line per command.
func init() {
	subcommands = append(subcommands, []func(*factory.Factory) *cobra.Command{
		func(f *factory.Factory) *cobra.Command { return train.NewCmd(f, nil) },
		func(f *factory.Factory) *cobra.Command { return serve.NewCmd(f, nil) },
		func(f *factory.Factory) *cobra.Command { return scale.NewCmd(f, nil) },
		func(f *factory.Factory) *cobra.Command { return preempt.NewCmd(f, nil) },
		apply.NewCmd,
		get.NewCmd,
		describe.NewCmd,
		logs.NewCmd,
		metrics.NewCmd,
		deletecmd.NewCmd,
		wait.NewCmd,
		func(f *factory.Factory) *cobra.Command { return servercmd.NewCmd(f, Version) },
		func(*factory.Factory) *cobra.Command { return servercmd.NewShimCmd() },
		func(*factory.Factory) *cobra.Command { return servercmd.NewLBCmd() },
		func(f *factory.Factory) *cobra.Command { return render.NewCmd(f, nil) },
		lint.NewCmd,
		func(f *factory.Factory) *cobra.Command { return diagnosecmd.NewCmd(f, nil) },
		func(f *factory.Factory) *cobra.Command { return uicmd.NewCmd(f, nil) },
	}...)
}
