// Package deletecmd is `petrel delete`: workloads and volumes by KIND NAME…,
// KIND/NAME…, every object of a spec file (-f), or every object of a kind
// (--all), as kubectl delete.
package deletecmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/get"
	"github.com/petrel-dev/petrel/internal/cli/specfiles"
)

// Options holds everything delete needs.
type Options struct {
	IO      *factory.IOStreams
	Backend func(context.Context) (backend.Backend, error)
	// Args are the command's arguments: KIND NAME… or KIND/NAME….
	Args []string
	// Files are spec files (-f) whose objects are deleted.
	Files []string
	// All deletes every object of the kind named in Args.
	All bool
	// IgnoreNotFound makes a missing object no error (--ignore-not-found).
	IgnoreNotFound bool
}

// NewCmd returns `petrel delete`.
func NewCmd(f *factory.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Backend: f.Backend}
	cmd := &cobra.Command{
		Use:   "delete job|service|volume NAME… | KIND/NAME… | -f FILE | KIND --all",
		Short: "Delete workloads (stopping their processes or pods) or volumes",
		Example: `  petrel delete job digits-train
  petrel delete service/digits volume/digits-models
  petrel delete -f examples/digits/
  petrel delete jobs --all`,
		ValidArgsFunction: get.CompleteKindAndNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Args = args
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&opts.Files, "filename", "f", nil, "delete the objects of this spec file, directory or - (repeatable)")
	fl.BoolVar(&opts.All, "all", false, "delete every object of the kind")
	fl.BoolVar(&opts.IgnoreNotFound, "ignore-not-found", false, "treat an object that does not exist as deleted")
	return cmd
}

// Run resolves what to delete and deletes it: workloads before the volumes
// they may mount.
func Run(ctx context.Context, opts *Options) error {
	refs, err := resolve(ctx, opts)
	if err != nil {
		return err
	}
	b, err := opts.Backend(ctx)
	if err != nil {
		return err
	}
	if opts.All {
		kind, _ := get.NormalizeKind(opts.Args[0])
		if refs, err = every(ctx, b, kind); err != nil {
			return err
		}
		if len(refs) == 0 {
			fmt.Fprintf(opts.IO.ErrOut, "No %ss found.\n", kind)
			return nil
		}
	}
	var errs []error
	for _, ref := range ordered(refs) {
		err := b.Delete(ctx, ref)
		switch {
		case err == nil:
			fmt.Fprintf(opts.IO.Out, "%s/%s deleted\n", ref.Kind, ref.Name)
		case errors.Is(err, backend.ErrNotFound) && opts.IgnoreNotFound:
		default:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolve turns the arguments and -f files into refs (none for --all,
// which lists the kind once connected).
func resolve(ctx context.Context, opts *Options) ([]backend.Ref, error) {
	args := opts.Args
	switch {
	case len(opts.Files) > 0:
		if len(args) > 0 || opts.All {
			return nil, fmt.Errorf("give either -f FILE or names, not both")
		}
		docs, err := specfiles.Read(opts.Files, opts.IO.In)
		if err != nil {
			return nil, err
		}
		var refs []backend.Ref
		for _, d := range docs {
			kind := map[string]string{v1alpha1.KindTrainingJob: "job", v1alpha1.KindInferenceService: "service", v1alpha1.KindVolume: "volume"}[d.Object.GetKind()]
			refs = append(refs, backend.Ref{Kind: kind, Name: d.Object.GetName()})
		}
		return refs, nil
	case len(args) == 0:
		return nil, fmt.Errorf("name what to delete: petrel delete job NAME, delete -f FILE or delete jobs --all")
	case opts.All:
		if len(args) != 1 {
			return nil, fmt.Errorf("--all deletes every object of one kind: petrel delete jobs --all")
		}
		_, err := get.NormalizeKind(args[0])
		return nil, err
	}
	kind, names, err := get.ParseArgs(args)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("name required: petrel delete %s NAME (or --all)", kind)
	}
	refs := make([]backend.Ref, len(names))
	for i, n := range names {
		refs[i] = backend.Ref{Kind: kind, Name: n}
	}
	return refs, nil
}

// every lists the objects of kind.
func every(ctx context.Context, b backend.Backend, kind string) ([]backend.Ref, error) {
	var refs []backend.Ref
	switch kind {
	case "job":
		js, err := b.ListJobs(ctx)
		if err != nil {
			return nil, err
		}
		for _, j := range js {
			refs = append(refs, backend.Ref{Kind: kind, Name: j.Name})
		}
	case "service":
		ss, err := b.ListServices(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			refs = append(refs, backend.Ref{Kind: kind, Name: s.Name})
		}
	default:
		vs, err := b.ListVolumes(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			refs = append(refs, backend.Ref{Kind: kind, Name: v.Name})
		}
	}
	return refs, nil
}

// ordered puts workloads before volumes, keeping order otherwise.
func ordered(refs []backend.Ref) []backend.Ref {
	var out, vols []backend.Ref
	for _, r := range refs {
		if r.Kind == "volume" {
			vols = append(vols, r)
		} else {
			out = append(out, r)
		}
	}
	return append(out, vols...)
}
