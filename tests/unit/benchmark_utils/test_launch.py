"""The local launcher's GPU assignment: workers to GPUs round-robin (several runs sharing one), threads per run."""

from __future__ import annotations

import json
import sys

import pytest

from benchmark_utils import benchmark
from benchmark_utils.launch import RunSpec, run_local, threads_per_worker, worker_slots


def test_worker_slots_share_gpus_round_robin():
    assert worker_slots(["0", "1"], None) == ["0", "1"]  # default: one run per GPU
    assert worker_slots(["0"], 4) == ["0", "0", "0", "0"]  # four runs sharing one GPU
    assert worker_slots(["2", "5"], 5) == ["2", "5", "2", "5", "2"]
    assert worker_slots([], None) == [""] and worker_slots([], 3) == ["", "", ""]  # CPU only
    assert threads_per_worker(16, 4) == 4 and threads_per_worker(16, 3) == 5 and threads_per_worker(2, 4) == 1


@pytest.mark.parametrize("visible, gpus", [("0,1", ["0", "1"]), ("3", ["3"]), ("", []), ("-1", []),
                                           ("GPU-5f3a, 1", ["GPU-5f3a", "1"])])
def test_detect_gpus_follows_cuda_visible_devices(monkeypatch, visible, gpus):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert benchmark.detect_gpus() == gpus


RECORD = """
import json, os, sys, time
out = sys.argv[1]
start = time.time()
time.sleep(1.0)
os.makedirs(out, exist_ok=True)
json.dump({"gpu": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()},
          open(os.path.join(out, "span.json"), "w"))
open(os.path.join(out, "done"), "w").close()
"""


def test_runs_share_each_gpu_up_to_its_slots(tmp_path):
    """6 runs of 1 s on 4 workers over GPUs 0 and 1: every run sees one GPU, never more than 2 runs on a GPU at once."""
    script = tmp_path / "record.py"
    script.write_text(RECORD)
    specs = [RunSpec("bigfish", seed, f"run{seed}",
                     (sys.executable, str(script), str(tmp_path / "runs" / f"run{seed}")),
                     "runs", "logs", str(tmp_path)) for seed in range(6)]
    results = run_local(specs, worker_slots(["0", "1"], 4), threads=1)
    assert [r.state for r in results] == ["done"] * 6
    spans = [json.loads((tmp_path / "runs" / spec.name / "span.json").read_text()) for spec in specs]
    assert {span["gpu"] for span in spans} == {"0", "1"}
    most = {}
    for gpu in ("0", "1"):
        mine = [span for span in spans if span["gpu"] == gpu]
        most[gpu] = max(sum(other["start"] <= span["start"] < other["end"] for other in mine) for span in mine)
    assert max(most.values()) == 2, (most, spans)  # shared, never beyond its two workers
