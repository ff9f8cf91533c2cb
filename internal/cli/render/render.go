// Package render implements `petrel render`: it prints the Kubernetes
// objects a spec file becomes, as multi-document YAML for `kubectl apply -f -`
// or a GitOps repository. It talks to no cluster.
package render

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/cli/factory"
	"github.com/petrel-dev/petrel/internal/kube"
	"github.com/petrel-dev/petrel/internal/spec"
)

// Options holds what `petrel render` needs.
type Options struct {
	IO *factory.IOStreams
	// File is the spec file (-f); "-" reads standard input.
	File string
	// Namespace is put on every object (-n); empty keeps the spec's.
	Namespace string
	// IncludeSecrets prints the Secret with the values of env vars marked
	// secret (--include-secrets); by default it is left out.
	IncludeSecrets bool
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
printed unless --include-secrets is given.`,
		Example: `  petrel render -f examples/digits/train.yaml
  petrel render -f serve.yaml -n ml | kubectl apply --server-side -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Namespace = f.Namespace
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.File, "filename", "f", "", "spec file to render (- for standard input)")
	cmd.Flags().BoolVar(&opts.IncludeSecrets, "include-secrets", false, "also print the Secret holding values of env vars marked secret")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// Run parses the spec file and writes the YAML to opts.IO.Out.
func Run(opts *Options) error {
	var docs []*spec.Document
	var err error
	if opts.File == "-" {
		docs, err = parseStdin(opts)
	} else {
		docs, err = spec.ParseFile(opts.File)
	}
	if err != nil {
		return err
	}
	set, err := kube.Render(docs, kube.Options{Namespace: opts.Namespace, IncludeSecretValues: opts.IncludeSecrets})
	if err != nil {
		return err
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

func parseStdin(opts *Options) ([]*spec.Document, error) {
	data, err := io.ReadAll(opts.IO.In)
	if err != nil {
		return nil, fmt.Errorf("read spec from standard input: %w", err)
	}
	return spec.Parse("<stdin>", data)
}
