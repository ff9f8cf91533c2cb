// Command etcd is upstream etcd's server, built from go.etcd.io/etcd/server/v3
// at the version k8s.io/kubernetes v1.37.2 tests against, so that kwokctl's
// binary runtime can start it without downloading a release archive.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
