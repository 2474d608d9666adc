"""The inference-latency timer: its bookkeeping on the CPU (CUDA events faked at the edge), CUDA events on a GPU."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from impoola.analysis import stats
from impoola.analysis.stats import CudaEventTimer, WallClockTimer, device_timer, mean_call_ms, measure_latency
from impoola.models.encoders import ModelOptions
from impoola.models.agents import build_agent


class FakeEvent:
    """A CUDA event that logs its calls; elapsed_time is a fixed 12 ms between two recorded events."""

    log: list[str] = []

    def __init__(self, enable_timing: bool = False):
        assert enable_timing
        self.recorded = False

    def record(self) -> None:
        self.recorded = True
        FakeEvent.log.append("record")

    def synchronize(self) -> None:
        FakeEvent.log.append("event sync")

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.recorded and end.recorded
        return 12.0


@pytest.fixture
def fake_cuda(monkeypatch):
    FakeEvent.log = []
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: FakeEvent.log.append("device sync"))
    return FakeEvent.log


def test_cuda_event_timer_syncs_before_and_times_the_span(fake_cuda):
    timer = device_timer(torch.device("cuda"))
    assert isinstance(timer, CudaEventTimer)
    assert mean_call_ms(lambda: fake_cuda.append("call"), 4, timer) == 3.0  # 12 ms over 4 calls
    # earlier queued work is waited for before the start event; the span ends when the end event completed
    assert fake_cuda == ["device sync", "record", "call", "call", "call", "call", "record", "event sync"]


def test_wall_clock_timer_means_over_the_calls():
    timer = device_timer(torch.device("cpu"))
    assert isinstance(timer, WallClockTimer)
    calls = []
    ms = mean_call_ms(lambda: (calls.append(1), time.sleep(0.01)), 3, timer)
    assert len(calls) == 3 and 10.0 <= ms < 200.0


class CountingAgent(nn.Module):
    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        assert obs.dtype == torch.uint8 and not self.training and torch.is_inference_mode_enabled()
        self.batches.append(len(obs))
        return obs.float().mean()


def test_latency_counts_warmup_apart_and_keys_each_batch(monkeypatch):
    spans = iter([6.0, 40.0])

    class FixedTimer:
        def start(self) -> None:
            pass

        def stop_ms(self) -> float:
            return next(spans)

    monkeypatch.setattr(stats, "device_timer", lambda device: FixedTimer())
    agent = CountingAgent().train()
    latency = measure_latency(agent, "cpu", batch_sizes=(8, 1), repeats=4, warmup=2)
    assert latency == {"charts/latency_ms_b8": 1.5, "charts/latency_ms_b1": 10.0}
    assert agent.batches == [8] * 6 + [1] * 6 and agent.training  # 2 warm-up + 4 timed calls per batch size


@pytest.mark.cuda
def test_cuda_event_timer_measures_queued_gpu_work():
    device = torch.device("cuda")
    torch.cuda._sleep(1000)  # queued work before the span is not counted
    timer = device_timer(device)
    start = time.perf_counter()
    ms = mean_call_ms(lambda: torch.cuda._sleep(20_000_000), 2, timer)  # ~10 ms each at ~2 GHz
    wall_ms = (time.perf_counter() - start) * 1000 / 2
    assert 1.0 < ms <= wall_ms * 1.05, (ms, wall_ms)
    agent = build_agent("ppo", ModelOptions(encoder="impoola", scale=1), 15).to(device)
    latency = measure_latency(agent, device, batch_sizes=(16,), repeats=3, warmup=1)
    assert latency["charts/latency_ms_b16"] > 0
