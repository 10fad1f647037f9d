"""One typed client per API (the sum service's gRPC, the ledger's REST), used by the CLI, the local-stack
harness, the bench, the soak and the tests alike."""
