"""NetworkPolicy enforcement. The offline cluster's bridge CNI enforces nothing; the agent kind's own CNI
embeds, sigs.k8s.io/kube-network-policies v0.8.0, builds from the Go module proxy but hands packets to
user space through the nftables `queue` expression, which needs CONFIG_NFT_QUEUE in the host's kernel."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.skips import expected_skip

KERNEL_CONFIG = Path("/proc/config.gz")


def kernel_option(name: str) -> str | None:
    """The value of a kernel build option (y, m, ...), None where it is not set, "unknown" unreadable."""
    try:
        lines = gzip.decompress(KERNEL_CONFIG.read_bytes()).decode().splitlines()
    except OSError:
        return "unknown"
    for line in lines:
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    return None


def test_network_policies_are_enforced() -> None:
    queue = kernel_option("CONFIG_NFT_QUEUE")
    if queue is None:
        expected_skip(
            "kernel-lacks-nft-queue",
            "kube-network-policies cannot enforce NetworkPolicies here; the chart's policies are applied "
            "but not enforced on this cluster",
        )
    if queue == "unknown":
        pytest.skip(f"cannot read {KERNEL_CONFIG} to tell whether kube-network-policies could run here")
    pytest.fail(
        f"this kernel has CONFIG_NFT_QUEUE={queue}: run kube-network-policies in the e2e cluster and test "
        "that pods without the allowed labels cannot reach the sum and ledger pods"
    )
