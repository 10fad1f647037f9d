"""`distsum`: a command-line client for the sum and ledger services."""

from __future__ import annotations

import argparse
import ssl
import sys
import uuid
from pathlib import Path

import grpc
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from distsum import settings, tls
from distsum.clients.ledger import LedgerClient, LedgerError
from distsum.clients.sum_service import SumClient


class ClientSettings(BaseSettings):
    """Where the CLI finds the services unless its options say otherwise."""

    model_config = SettingsConfigDict(env_prefix="DISTSUM_", extra="ignore", frozen=True)

    target: str = Field(default="127.0.0.1:50051", min_length=1)
    ledger_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://")
    # TLS to the services: the CA that signed them, and this client's certificate for mutual TLS.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


def _add(args: argparse.Namespace) -> int:
    request_id = args.request_id or str(uuid.uuid4())
    credentials = None
    if args.ca_file or args.cert_file:
        try:
            credentials = tls.grpc_channel_credentials(args.ca_file, args.cert_file, args.key_file)
        except OSError as exc:
            print(f"error: cannot read a TLS file: {exc}", file=sys.stderr)
            return 2
    with SumClient(args.target, credentials) as client:
        try:
            reply = client.add(request_id, args.a, args.b, timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
            print(
                f"request_id: {request_id} (retry with --request-id to avoid double counting)",
                file=sys.stderr,
            )
            return 1
    print(f"{reply.sum}")
    print(f"request_id: {reply.request_id}{' (replayed)' if reply.replayed else ''}", file=sys.stderr)
    return 0


def _total(args: argparse.Namespace) -> int:
    context = None
    if args.ca_file or args.cert_file:
        try:
            context = tls.client_ssl_context(args.ca_file, args.cert_file, args.key_file)
        except (OSError, ssl.SSLError) as exc:
            print(f"error: cannot use the TLS files: {exc}", file=sys.stderr)
            return 2
    client = LedgerClient(args.ledger_url, timeout=args.timeout, context=context)
    url = client.url + "/v1/total"
    try:
        body = client.total()
    except LedgerError as exc:
        print(f"error: {url}: HTTP {exc.status}: {exc.text}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach the ledger at {url}: {exc}", file=sys.stderr)
        return 1
    print(body["total"])
    print(f"count: {body['count']}", file=sys.stderr)
    return 0


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text} is not a 64-bit signed integer")
    return value


def _tls_options(command: argparse.ArgumentParser, defaults: ClientSettings, service: str) -> None:
    options = (
        ("--ca-file", defaults.tls_ca_file, f"connect to {service} with TLS, trusting this CA", "CA_FILE"),
        ("--cert-file", defaults.tls_cert_file, "client certificate, with --key-file", "CERT_FILE"),
        ("--key-file", defaults.tls_key_file, "its private key", "KEY_FILE"),
    )
    for flag, default, text, variable in options:
        command.add_argument(flag, type=Path, default=default, help=f"{text} (env DISTSUM_TLS_{variable})")


def build_parser() -> argparse.ArgumentParser:
    defaults = settings.load(ClientSettings)
    parser = argparse.ArgumentParser(prog="distsum", description=__doc__)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    commands = parser.add_subparsers(dest="command", required=True)

    add = commands.add_parser("add", help="add two int64 numbers through the sum service")
    add.add_argument("a", type=_int64)
    add.add_argument("b", type=_int64)
    add.add_argument("--request-id", help="UUID making the call idempotent (default: a new one)")
    add.add_argument(
        "--target",
        default=defaults.target,
        help="sum service host:port (env DISTSUM_TARGET)",
    )
    _tls_options(add, defaults, "the sum service")
    add.set_defaults(run=_add)

    total = commands.add_parser("total", help="print the ledger's running total")
    total.add_argument(
        "--ledger-url",
        default=defaults.ledger_url,
        help="ledger base URL (env DISTSUM_LEDGER_URL)",
    )
    _tls_options(total, defaults, "the ledger (https)")
    total.set_defaults(run=_total)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.cert_file is None) != (args.key_file is None):
        parser.error("--cert-file and --key-file go together")
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
