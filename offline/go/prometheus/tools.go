//go:build tools

// Package tools pins Prometheus' server command, built by `scripts/go-tool.sh prometheus`. The module
// cannot be installed with `go install module@version` (its go.mod has a replace directive, repeated
// in this module's go.mod). Built without the `builtinassets` tag: the web UI's assets are made by npm
// and are not in the module, so the API answers and the UI pages do not.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
