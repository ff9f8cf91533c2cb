package get

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/server"
)

// Names returns the names of the objects of kind (job, service, volume)
// for shell completion, or nil. On the local target it asks only a server
// that already runs: pressing Tab never starts one.
func Names(ctx context.Context, f *factory.Factory, kind string) []string {
	if f.BackendOverride == nil && (f.Target == "" || f.Target == "local") {
		if _, err := os.Stat(server.SocketPath(f.Home)); err != nil {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	b, err := f.Backend(ctx)
	if err != nil {
		return nil
	}
	var names []string
	switch kind {
	case "job":
		js, _ := b.ListJobs(ctx)
		for _, j := range js {
			names = append(names, j.Name)
		}
	case "service":
		ss, _ := b.ListServices(ctx)
		for _, s := range ss {
			names = append(names, s.Name)
		}
	case "volume":
		vs, _ := b.ListVolumes(ctx)
		for _, v := range vs {
			names = append(names, v.Name)
		}
	}
	return names
}

// CompleteKindAndNames completes `KIND NAME…` and `KIND/NAME` arguments
// (get, describe, delete) with the names of existing objects.
func CompleteKindAndNames(f *factory.Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		if len(args) == 0 {
			if refs, ok := completeSlashRef(ctx, f, toComplete); ok {
				return refs, cobra.ShellCompDirectiveNoFileComp
			}
			return []string{"jobs", "services", "volumes"}, cobra.ShellCompDirectiveNoFileComp
		}
		kind, err := NormalizeKind(args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return Names(ctx, f, kind), cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteRef completes one NAME or KIND/NAME argument whose bare form
// names an object of defaultKind (logs NAME is a job).
func CompleteRef(f *factory.Factory, defaultKind string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		if refs, ok := completeSlashRef(ctx, f, toComplete); ok {
			return refs, cobra.ShellCompDirectiveNoFileComp
		}
		return Names(ctx, f, defaultKind), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeSlashRef completes a KIND/NAME prefix with the names of that
// kind; ok is false when toComplete has no slash.
func completeSlashRef(ctx context.Context, f *factory.Factory, toComplete string) (refs []string, ok bool) {
	k, prefix, ok := strings.Cut(toComplete, "/")
	if !ok {
		return nil, false
	}
	kind, err := NormalizeKind(k)
	if err != nil {
		return nil, true
	}
	for _, n := range Names(ctx, f, kind) {
		if strings.HasPrefix(n, prefix) {
			refs = append(refs, k+"/"+n)
		}
	}
	return refs, true
}
