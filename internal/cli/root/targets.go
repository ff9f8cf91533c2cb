package root

import (
	"context"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/server"
)

func init() {
	// The local engine: a client of `petrel server`, started when needed.
	factory.RegisterTarget("local", func(ctx context.Context, f *factory.Factory) (backend.Backend, error) {
		return server.Connect(ctx, f.Home)
	})
}
