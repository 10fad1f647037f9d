"""A corrupt or missing store is refused; a read-only or full volume pauses the ledger and loses nothing."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from distsum import event_codec
from distsum.clients.ledger import http_json
from distsum.clients.waiting import wait_until
from distsum.domain import SumComputed
from localstack.stack import Ledger
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, producer
from tests.services import new_id
from tests.skips import expected_skip

EXIT_STORE_REFUSED = 3


def publish(topic: Topic, values: range) -> int:
    kafka = producer(topic.bootstrap)
    for value in values:
        event = SumComputed(new_id(), value, value, 2 * value, datetime.now(UTC))
        kafka.produce(topic.name, key=event.request_id.encode(), value=event_codec.encode(event))
    assert kafka.flush(30) == 0
    return sum(2 * v for v in values)


def readiness(ledger: Ledger) -> str:
    try:
        status, body = http_json(f"{ledger.url}/readyz")
    except OSError as exc:
        return f"not answering: {exc}"
    return "ready" if status == 200 else str(body["checks"]["consumer"])


def assert_refused(ledger: Ledger, *phrases: str) -> None:
    assert ledger.process.wait(60) == EXIT_STORE_REFUSED
    log = ledger.process.log_path.read_text()
    for phrase in phrases:
        assert phrase in log


def test_corrupt_store_is_refused(topic: Topic, start_ledger: LedgerFactory, tmp_path: Path) -> None:
    data = tmp_path / "volume"
    data.mkdir()
    (data / "ledger.db").write_bytes(b"this is not an SQLite database" * 100)
    (data / "total").write_text("1234\n")

    ledger = start_ledger(topic, data_dir=data, wait=False)

    assert_refused(ledger, "refusing to start", "restore it from a backup")
    assert (data / "total").read_text() == "1234\n"


def test_missing_store_on_a_used_volume_is_refused(
    topic: Topic, start_ledger: LedgerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "volume"
    data.mkdir()
    (data / "total").write_text("1234\n")

    ledger = start_ledger(topic, data_dir=data, wait=False)

    assert_refused(ledger, "is missing but the volume is not empty")
    assert not (data / "ledger.db").exists()


def _mount(*args: str) -> None:
    if os.geteuid() != 0:
        expected_skip("not-root", "mounting a volume needs root")
    mounted = subprocess.run(["mount", *args], check=False, capture_output=True)
    assert mounted.returncode == 0, f"mount {' '.join(args)} failed: {mounted.stderr.decode().strip()}"


@pytest.fixture
def tmpfs_volume(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem that can be filled up or remounted, as a cloud volume can be."""
    volume = tmp_path / "tmpfs"
    volume.mkdir()
    _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(volume))
    try:
        yield volume
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)


@pytest.fixture
def ext4_volume(tmp_path: Path) -> Iterator[Path]:
    """ext4 mounted errors=remount-ro: the kernel turns it read-only on an error, as on real disks."""
    image, volume = tmp_path / "volume.ext4", tmp_path / "ext4"
    volume.mkdir()
    with image.open("wb") as blob:
        blob.truncate(64 * 2**20)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    _mount("-o", "loop,errors=remount-ro", str(image), str(volume))
    try:
        yield volume
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)


def make_read_only_by_a_filesystem_error(volume: Path) -> None:
    device = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(volume)], check=True, capture_output=True, text=True
    ).stdout.strip()
    Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").write_text("1")


def test_volume_turning_read_only_stops_consumption_and_loses_nothing(
    topic: Topic, start_ledger: LedgerFactory, ext4_volume: Path, tmp_path: Path
) -> None:
    ledger = start_ledger(topic, data_dir=ext4_volume)
    expected = publish(topic, range(1, 51))
    ledger.client.wait_count(50)

    make_read_only_by_a_filesystem_error(ext4_volume)
    expected += publish(topic, range(51, 101))
    wait_until(lambda: "degraded" in readiness(ledger), 30, "/readyz to report the read-only store")
    assert ledger.total()["count"] == 50

    # What an operator does: stop, repair and remount the volume, start again.
    ledger.process.stop()
    image = tmp_path / "volume.ext4"
    subprocess.run(["umount", str(ext4_volume)], check=True)
    subprocess.run(["e2fsck", "-fy", str(image)], check=False, capture_output=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(ext4_volume)], check=True)
    ledger.restart()

    body = ledger.client.wait_count(100)
    assert body["total"] == str(expected)
    ledger.wait_total_file(expected)


def test_ledger_on_a_read_only_volume_waits_and_resumes_when_it_clears(
    topic: Topic, start_ledger: LedgerFactory, tmpfs_volume: Path
) -> None:
    ledger = start_ledger(topic, data_dir=tmpfs_volume)
    expected = publish(topic, range(1, 51))
    ledger.client.wait_count(50)
    ledger.process.stop()

    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs_volume)], check=True)
    try:
        ledger.process.start()
        expected += publish(topic, range(51, 101))
        wait_until(lambda: "degraded" in readiness(ledger), 30, "/readyz to report the read-only store")
        assert ledger.total()["count"] == 50
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs_volume)], check=True)

    body = ledger.client.wait_count(100)
    assert body["total"] == str(expected)
    wait_until(lambda: readiness(ledger) == "ready", 30, "/readyz to recover")
    ledger.wait_total_file(expected)


def test_full_volume_pauses_and_resumes_without_loss(
    topic: Topic, start_ledger: LedgerFactory, tmpfs_volume: Path
) -> None:
    ledger = start_ledger(topic, data_dir=tmpfs_volume)
    expected = publish(topic, range(1, 11))
    ledger.client.wait_count(10)

    filler = tmpfs_volume / ".filler"
    with filler.open("wb") as blob, contextlib.suppress(OSError):
        while True:
            try:
                blob.write(b"\0" * 65536)
                blob.flush()
                os.fsync(blob.fileno())
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                raise
    expected += publish(topic, range(11, 2011))
    wait_until(lambda: "degraded" in readiness(ledger), 30, "/readyz to report the full volume")
    stuck_at = ledger.total()["count"]
    assert isinstance(stuck_at, int) and stuck_at < 2010

    filler.unlink()
    body = ledger.client.wait_count(2010)
    assert body["total"] == str(expected)
    wait_until(lambda: readiness(ledger) == "ready", 30, "/readyz to recover")
