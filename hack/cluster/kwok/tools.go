//go:build tools

// Package tools pins the kwok commands that build.sh compiles, so that
// `go mod tidy` keeps their dependencies in go.sum.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
	_ "sigs.k8s.io/kwok/cmd/kwokctl"
)
