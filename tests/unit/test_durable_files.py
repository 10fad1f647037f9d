"""Whole-file replacement through a temp file and a rename."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger_svc.store.durable_files import fsync_path, replace_atomically


@pytest.mark.parametrize("durable", [True, False])
def test_writes_the_content_and_leaves_no_temp_file(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "total"
    replace_atomically(target, "12345\n", durable=durable)
    assert target.read_text(encoding="utf-8") == "12345\n"
    assert [p.name for p in tmp_path.iterdir()] == ["total"]


def test_replaces_existing_content_completely(tmp_path: Path) -> None:
    target = tmp_path / "total"
    target.write_text("a much longer previous content\n", encoding="utf-8")
    replace_atomically(target, "7\n")
    assert target.read_text(encoding="utf-8") == "7\n"
    assert [p.name for p in tmp_path.iterdir()] == ["total"]


def test_writes_utf8(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    replace_atomically(target, '{"reason": "disque plein — ½"}')
    assert target.read_bytes() == '{"reason": "disque plein — ½"}'.encode()


def test_failed_write_keeps_the_old_content_and_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "total"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        replace_atomically(target, "\ud800")  # a lone surrogate cannot be written as UTF-8
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["total"]


def test_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        replace_atomically(tmp_path / "absent" / "total", "1\n")


def test_fsync_path_accepts_files_and_directories(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("x", encoding="utf-8")
    fsync_path(file)
    fsync_path(tmp_path)
    with pytest.raises(FileNotFoundError):
        fsync_path(tmp_path / "absent")
