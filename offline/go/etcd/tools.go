//go:build tools

// Package tools pins etcd's server command, built by `scripts/go-tool.sh etcd`. go.etcd.io/etcd/server/v3
// cannot be installed with `go install module@version` because its go.mod has replace directives.
package tools

import _ "go.etcd.io/etcd/server/v3"
