"""Atomic files: a failed write leaves the old file and no temporary one; JSON documents read back as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from impoola.run.files import atomic_write_bytes, write_json


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write_bytes(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_write_json_replaces_the_file_and_writes_other_types_as_text(tmp_path):
    path = tmp_path / "results.json"
    write_json(path, {"old": 1})
    write_json(path, {"score": 0.5, "where": Path("runs/x"), "none": None})
    assert json.loads(path.read_text()) == {"score": 0.5, "where": "runs/x", "none": None}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_failed_write_names_the_file(tmp_path):
    missing = tmp_path / "gone" / "f.json"
    with pytest.raises(OSError) as raised:
        write_json(missing, {})
    assert raised.value.filename == str(missing)
