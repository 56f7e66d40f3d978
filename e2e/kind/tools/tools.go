//go:build tools

// Package tools records the Go programs the kind node image is built from.
package tools

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
