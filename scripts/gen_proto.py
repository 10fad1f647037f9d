"""Generate the Python protobuf/gRPC code under src/ from proto/.

`--check` regenerates into a scratch directory and fails when the committed
code differs, so a proto edit without `make proto` cannot pass CI.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_ROOT = ROOT / "src"
PACKAGE_DIR = Path("distsum") / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out_root: Path) -> list[Path]:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p for p in (out_root / PACKAGE_DIR).iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    args = parser.parse_args()
    if not args.check:
        for old in (OUT_ROOT / PACKAGE_DIR).glob("*_pb2*"):
            old.unlink()
        for path in generate(OUT_ROOT):
            print(f"generated {path.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = {p.name: p for p in generate(Path(scratch))}
        committed = {
            p.name: p for p in (OUT_ROOT / PACKAGE_DIR).iterdir() if p.name.endswith(GENERATED_SUFFIXES)
        }
        stale = sorted(
            name
            for name in fresh.keys() | committed.keys()
            if name not in fresh
            or name not in committed
            or not filecmp.cmp(fresh[name], committed[name], False)
        )
    if stale:
        print(f"generated protobuf code is stale ({', '.join(stale)}): run `make proto`", file=sys.stderr)
        return 1
    print("generated protobuf code is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
