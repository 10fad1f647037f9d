"""`make loadtest`'s last word: the ledger's total against what k6 had acknowledged.

    python3 scripts/loadtest_verdict.py RESULT_JSON LEDGER_URL [SETTLE_SECONDS]

RESULT_JSON is k6's `distsum-loadtest-result` line (without its prefix): the ledger before the run and
what k6 expects after it. An https LEDGER_URL is read with the client certificate the ledger's mutual
TLS asks for, named as the distsum CLI names it: DISTSUM_TLS_CA_FILE, DISTSUM_TLS_CERT_FILE and
DISTSUM_TLS_KEY_FILE. The ledger is read (through a port-forward) until it has counted what k6 had
acknowledged, or SETTLE_SECONDS (default 120) passed; then the verdict. Exact when nothing else wrote to
the ledger meanwhile; ids k6 never saw acknowledged may or may not be counted, within their bounds.
Exit 0 when the ledger agrees, 1 when it does not (or never answered). Standard library only: it runs
on the machine that runs kubectl, outside the project's virtualenv.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.request
from collections.abc import Mapping
from typing import Any


def verdict(result: dict[str, Any], ledger: dict[str, Any]) -> tuple[bool, str]:
    """Whether the ledger's /v1/total agrees with k6's result, and a line that says why."""
    expected_total, expected_count = int(result["expected_total"]), int(result["expected_count"])
    unresolved_ids, unresolved_sum = int(result["unresolved_ids"]), int(result.get("unresolved_sum", "0"))
    total, count = int(ledger["total"]), int(ledger["count"])
    seen = f"the ledger counts {count} events with total {total}"
    if unresolved_ids == 0:
        ok = (total, count) == (expected_total, expected_count)
        return ok, f"{seen}; k6 expects exactly {expected_count} with total {expected_total}"
    low, high = sorted((expected_total, expected_total + unresolved_sum))
    ok = expected_count <= count <= expected_count + unresolved_ids and low <= total <= high
    return ok, (
        f"{seen}; k6 expects {expected_count} to {expected_count + unresolved_ids} events with a total"
        f" from {low} to {high} ({unresolved_ids} ids were never acknowledged)"
    )


def tls_context(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """A context trusting DISTSUM_TLS_CA_FILE and presenting the client certificate, when one is named."""
    ca_file = environ.get("DISTSUM_TLS_CA_FILE", "")
    if not ca_file:
        return None
    context = ssl.create_default_context(cafile=ca_file)
    context.load_cert_chain(environ["DISTSUM_TLS_CERT_FILE"], environ["DISTSUM_TLS_KEY_FILE"])
    return context


def read_total(url: str, context: ssl.SSLContext | None) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/v1/total", timeout=5, context=context) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except (OSError, ValueError):
        return None


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    result, url = json.loads(argv[1]), argv[2].rstrip("/")
    deadline = time.monotonic() + (float(argv[3]) if len(argv) == 4 else 120.0)
    try:
        context = tls_context(os.environ)
    except (OSError, KeyError) as error:
        print(f"loadtest: the client certificate for the ledger is unusable: {error!r}", file=sys.stderr)
        return 1
    ledger = read_total(url, context)
    # The ledger applies what k6 had acknowledged a little after k6 saw the acknowledgements.
    while (ledger is None or ledger["count"] < int(result["expected_count"])) and time.monotonic() < deadline:
        time.sleep(1)
        ledger = read_total(url, context)
    if ledger is None:
        print(f"loadtest: the ledger at {url} did not answer /v1/total", file=sys.stderr)
        return 1
    ok, line = verdict(result, ledger)
    print(f"loadtest: {'totals agree' if ok else 'TOTALS DIFFER'}: {line}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
