//go:build tools

// Package tools pins OpenTofu's main package so `go mod tidy` keeps its dependencies.
package tools

import _ "github.com/opentofu/opentofu/cmd/tofu"
