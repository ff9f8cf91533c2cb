// Package render implements `petrel render`: it prints the Kubernetes
// objects a spec file becomes, as multi-document YAML for `kubectl apply -f -`
// or a GitOps repository. It talks to no cluster.
package render

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/cli/specfiles"
	"github.com/petrel-dev/petrel/internal/kube"
	"github.com/petrel-dev/petrel/internal/spec"
)

// Options holds what `petrel render` needs.
type Options struct {
	IO *factory.IOStreams
	// Files are the -f arguments: files, directories or "-" for standard
	// input, read as every command reads -f (specfiles.Read).
	Files []string
	// Namespace is put on every object (-n); empty keeps the spec's.
	Namespace string
	// IncludeSecrets prints the Secret with the values of env vars marked
	// secret (--include-secrets); by default it is left out.
	IncludeSecrets bool
	// IncludeSeedData prints the ConfigMaps that seed volumes from their
	// source directory (--include-seed-data). By default they are left
	// out, with a comment saying how to create them: they hold the source
	// files base64-encoded, up to kube.SeedLimit bytes on one line.
	IncludeSeedData bool
}

// NewCmd returns `petrel render`. runF, when not nil, replaces the run
// function (tests of flag parsing).
func NewCmd(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "render -f FILE",
		Short: "Print the Kubernetes objects a spec becomes, as YAML for kubectl apply",
		Long: `render prints the objects petrel would apply on --target kubernetes:
a PersistentVolumeClaim per Volume, a batch/v1 Job per TrainingJob, and a
Deployment, Service and HorizontalPodAutoscaler per InferenceService, as
multi-document YAML that "kubectl apply -f -" accepts. Notes about what has no
native form are printed first as YAML comments. Secret values are never
printed unless --include-secrets is given; the ConfigMaps that seed volumes
from a source directory (the files base64-encoded) only with
--include-seed-data, and a comment says how to create them otherwise.`,
		Example: `  petrel render -f examples/digits/train.yaml
  petrel render -f examples/digits/
  petrel render -f serve.yaml -n ml | kubectl apply --server-side -f -
  petrel render -f train.yaml --include-seed-data | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Namespace = f.Namespace
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().StringSliceVarP(&opts.Files, "filename", "f", nil, "spec file, directory or - for standard input (repeatable)")
	cmd.Flags().BoolVar(&opts.IncludeSecrets, "include-secrets", false, "also print the Secret holding values of env vars marked secret")
	cmd.Flags().BoolVar(&opts.IncludeSeedData, "include-seed-data", false, "also print the ConfigMaps holding volume source files (base64)")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// Run reads the spec files and writes the YAML to opts.IO.Out.
func Run(opts *Options) error {
	docs, err := specfiles.Read(opts.Files, opts.IO.In)
	if err != nil {
		return err
	}
	set, err := kube.Render(docs, kube.Options{Namespace: opts.Namespace, IncludeSecretValues: opts.IncludeSecrets})
	if err != nil {
		return err
	}
	if !opts.IncludeSeedData {
		leaveOutSeeds(set, docs)
	}
	y, err := set.YAML()
	if err != nil {
		return err
	}
	if _, err := opts.IO.Out.Write(y); err != nil {
		return fmt.Errorf("write YAML: %w", err)
	}
	return nil
}

// leaveOutSeeds removes the seed ConfigMap of every volume with a source
// from set and adds a note saying how to create it.
func leaveOutSeeds(set *kube.Set, docs []*spec.Document) {
	sources := map[string]string{} // ConfigMap name → source directory
	for _, d := range docs {
		if v, ok := d.Object.(*v1alpha1.Volume); ok && v.Spec.Source != "" {
			sources[v.Metadata.Name+"-seed"] = v.Spec.Source
		}
	}
	kept := set.Objects[:0]
	for _, o := range set.Objects {
		cm, ok := o.(*corev1.ConfigMap)
		src, seed := sources[o.GetName()]
		if !ok || !seed {
			kept = append(kept, o)
			continue
		}
		size := 0
		flat := true
		keys := make([]string, 0, len(cm.BinaryData))
		for k, b := range cm.BinaryData {
			size += len(b)
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.ContainsAny(k, "/_") {
				flat = false // a nested file: its key is not its name
			}
		}
		how := "run petrel render with --include-seed-data to print it"
		if flat {
			how = fmt.Sprintf("create it with: kubectl create configmap %s --from-file=%s (next to the spec file), or run petrel render with --include-seed-data", cm.Name, src)
		}
		set.Notes = append(set.Notes, fmt.Sprintf("ConfigMap %s (%d bytes of %s, base64-encoded) is left out; %s.", cm.Name, size, src, how))
	}
	set.Objects = kept
}
