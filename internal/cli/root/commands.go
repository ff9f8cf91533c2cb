package root

import (
	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/cli/factory"
)

// Each verb package adds its constructor here, one line per command.
func init() {
	subcommands = append(subcommands, []func(*factory.Factory) *cobra.Command{}...)
}
