package root

import (
	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/render"
)

// Each verb package adds its constructor here, one line per command.
func init() {
	subcommands = append(subcommands, []func(*factory.Factory) *cobra.Command{
		func(f *factory.Factory) *cobra.Command { return render.NewCmd(f, nil) },
	}...)
}
