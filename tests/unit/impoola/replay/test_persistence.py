"""Replay snapshots: round trip through memory maps, all-or-nothing writes (SIGKILL mid-save), the resume's clean-up,
the disk check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from impoola.replay import ReplayMemory, check_replay_disk, has_snapshot, keep_only, restore_replay, save_snapshot
from impoola.replay.persistence import load_snapshot
from support.paths import ROOT
from support.replay import feed_coded, stored, trajectory


def memory(seed: int = 3) -> ReplayMemory:
    return ReplayMemory(30, 2, (3, 1, 1), mode="textbook", gamma=0.9, seed=seed)


def filled(steps: int = 40) -> tuple[ReplayMemory, tuple]:
    """A memory fed `steps` steps of a 60-step trajectory (and the trajectory)."""
    traj = trajectory(60, (4, 9))
    mem = memory()
    feed_coded(mem, *(part[:steps + 1] if i == 0 else part[:steps] for i, part in enumerate(traj)))
    mem.update_priorities(np.arange(5), np.arange(1.0, 6.0))
    return mem, traj


def assert_same_state(a: ReplayMemory, b: ReplayMemory) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["counters"] == sb["counters"]
    for name, array in sa["arrays"].items():
        np.testing.assert_array_equal(sb["arrays"][name], array, err_msg=name)


def test_snapshot_round_trip_continues_identically(tmp_path):
    mem, (obs_ids, actions, rewards, dones) = filled()
    name = save_snapshot(mem, tmp_path)
    assert name == "snapshot_000000" and sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert np.load(tmp_path / name / "frames.npy", mmap_mode="r").shape == mem.frames.shape
    back = memory(seed=99)
    load_snapshot(back, tmp_path / name)
    assert_same_state(back, mem)
    np.testing.assert_array_equal(mem.sample(8).indices, back.sample(8).indices)
    for m in (mem, back):  # pending n-step windows survive the round trip
        feed_coded(m, obs_ids[40:], actions[40:], rewards[40:], dones[40:])
    assert stored(back) == stored(mem)
    with pytest.raises(ValueError, match="does not match"):
        load_snapshot(ReplayMemory(30, 2, (3, 1, 1), mode="release", gamma=0.9), tmp_path / name)


def test_each_save_is_a_new_snapshot_and_keep_only_drops_the_others(tmp_path):
    mem, _ = filled()
    first, second = save_snapshot(mem, tmp_path), save_snapshot(mem, tmp_path)
    assert (first, second) == ("snapshot_000000", "snapshot_000001")
    (tmp_path / ".snapshot_000002.tmp123").mkdir()  # a killed writer's leftover
    (tmp_path / ".snapshot_000002.tmp123" / "frames.npy").write_bytes(b"partial")
    keep_only(tmp_path, second)
    assert [p.name for p in tmp_path.iterdir()] == [second]
    assert save_snapshot(mem, tmp_path) == "snapshot_000002"
    keep_only(tmp_path / "missing", None)  # no directory: nothing to do


def test_restore_loads_the_checkpoint_s_snapshot_and_removes_every_leftover(tmp_path, capsys):
    mem, _ = filled()
    old = save_snapshot(mem, tmp_path)
    feed_coded(mem, *(part[:2] if i == 0 else part[:1] for i, part in enumerate(trajectory(1, (4, 9), seed=1))))
    newer = save_snapshot(mem, tmp_path)  # written, but its checkpoint never was
    (tmp_path / ".snapshot_000009.tmp1").mkdir()
    checkpoint = {"replay_snapshot": old, "global_step": 80}
    assert has_snapshot(tmp_path)(checkpoint) and has_snapshot(tmp_path)({"replay_snapshot": newer})
    assert not has_snapshot(tmp_path)({"replay_snapshot": None}) and not has_snapshot(tmp_path)({})
    back = memory(seed=0)
    assert restore_replay(back, tmp_path, checkpoint)
    assert back.step == 40 and [p.name for p in tmp_path.iterdir()] == [old]
    assert not restore_replay(memory(), tmp_path, {"replay_snapshot": None, "global_step": 16})
    assert capsys.readouterr().err.startswith("warning: no replay memory saved in")
    assert not list(tmp_path.iterdir())  # a checkpoint without a snapshot: nothing on disk belongs to it
    save_snapshot(mem, tmp_path)
    assert not restore_replay(memory(), tmp_path, None) and not list(tmp_path.iterdir())  # a fresh start empties it
    assert capsys.readouterr().err == ""


KILLED_SAVE = """
import os, signal, sys
import numpy as np
from impoola.replay import ReplayMemory, persistence
writes = []
def write(path, fn):
    writes.append(path)
    if len(writes) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    original(path, fn)
original, persistence.atomic_write_bytes = persistence.atomic_write_bytes, write
persistence.save_snapshot(ReplayMemory(30, 2, (3, 1, 1)), sys.argv[1])
"""


@pytest.mark.parametrize("killed_at", [1, 8, 17])  # the first array, one in the middle, meta.json (after 16 arrays)
def test_sigkill_inside_a_save_leaves_no_snapshot(tmp_path, killed_at):
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(tmp_path), str(killed_at)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []  # a temporary directory only
    assert not has_snapshot(tmp_path)({"replay_snapshot": "snapshot_000000"})
    assert not restore_replay(memory(), tmp_path, None) and not list(tmp_path.iterdir())


def test_disk_check_passes_small_memories_and_stops_huge_ones(tmp_path):
    mem, _ = filled()
    save_snapshot(mem, tmp_path / "replay")
    check_replay_disk(tmp_path / "replay", mem.nbytes)
    with pytest.raises(ValueError, match=r"^invalid --save_buffer: the replay memory needs 2048.0 PiB free on"):
        check_replay_disk(tmp_path / "new_run" / "replay", 2**60)


def test_disk_check_on_a_small_disk_shows_sizes_in_a_unit_that_shows_them(tmp_path, monkeypatch):
    monkeypatch.setattr("impoola.replay.persistence.shutil.disk_usage", lambda path: SimpleNamespace(free=3 * 2**20))
    with pytest.raises(ValueError) as info:
        check_replay_disk(tmp_path / "replay", 5 * 2**20 + 2**19)
    assert "needs 11.0 MiB free on" in str(info.value) and "(2 x 5.5 MiB while saving), 3.0 MiB are free" in str(
        info.value)
