"""The ledger's metrics port: /metrics for Prometheus and /healthz for the kubelet, kept off the REST API."""
