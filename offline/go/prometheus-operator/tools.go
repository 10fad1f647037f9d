//go:build tools

// Package tools pins the Prometheus Operator's commands (the operator and its config reloader), built by
// `scripts/go-tool.sh prometheus-operator` and `prometheus-config-reloader`. The operator's module cannot
// be installed with `go install module@version`: its go.mod replaces its own pkg/ modules with local
// folders, so this module requires them at the same version instead.
package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/cmd/operator"
	_ "github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader"
)
