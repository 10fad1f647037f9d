//go:build tools

// Package tools pins skaffold's command, built by `scripts/go-tool.sh skaffold`.
// github.com/GoogleContainerTools/skaffold/v2 cannot be installed with `go install module@version`
// because its go.mod has replace directives; go.mod here repeats them.
package tools

import _ "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
