"""Network statistics: parameters, multiply-accumulates and parameter bytes (torchinfo), and inference latency."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torchinfo import summary

from impoola.envs.procgen import OBS_SHAPE


def network_stats(agent: nn.Module, device: str | torch.device = "cpu") -> dict[str, float]:
    """Total parameters, MACs (millions) and parameter bytes of the whole agent (encoder + heads) on one 64x64 frame."""
    stats = summary(
        agent, input_data=torch.zeros(1, *OBS_SHAPE), device=torch.device(device), verbose=0,
    )
    return {
        "charts/total_network_params": float(stats.total_params),
        "charts/total_network_m_macs": stats.total_mult_adds / 1e6,
        "charts/total_network_param_bytes": float(stats.total_param_bytes),
    }


class WallClockTimer:
    """Elapsed milliseconds by the host's clock (CPU work runs synchronously)."""

    def start(self) -> None:
        self.begin = time.perf_counter()

    def stop_ms(self) -> float:
        return (time.perf_counter() - self.begin) * 1000.0


class CudaEventTimer:
    """Elapsed milliseconds of the work queued on a CUDA device, between two events recorded on its stream."""

    def __init__(self, device: torch.device):
        self.device = device
        self.begin = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        torch.cuda.synchronize(self.device)  # earlier work (the warm-up) must not be timed
        self.begin.record()

    def stop_ms(self) -> float:
        self.end.record()
        self.end.synchronize()
        return self.begin.elapsed_time(self.end)


def device_timer(device: torch.device) -> WallClockTimer | CudaEventTimer:
    """CUDA events on a GPU, the wall clock elsewhere."""
    return CudaEventTimer(device) if device.type == "cuda" else WallClockTimer()


def mean_call_ms(fn: Callable[[], object], repeats: int, timer: WallClockTimer | CudaEventTimer) -> float:
    """Mean milliseconds per call of `fn` over `repeats` calls timed as one span."""
    timer.start()
    for _ in range(repeats):
        fn()
    return timer.stop_ms() / repeats


@torch.inference_mode()
def measure_latency(
    agent: nn.Module,
    device: str | torch.device = "cpu",
    batch_sizes: tuple[int, ...] = (256, 1),
    repeats: int = 20,
    warmup: int = 2,
) -> dict[str, float]:
    """Mean inference latency in ms per forward pass of random uint8 frames, keys `charts/latency_ms_b<batch>`."""
    device = torch.device(device)
    was_training = agent.training
    agent.eval()
    generator = torch.Generator().manual_seed(0)
    results = {}
    try:
        for batch in batch_sizes:
            obs = torch.randint(0, 256, (batch, *OBS_SHAPE), dtype=torch.uint8, generator=generator).to(device)
            for _ in range(warmup):
                agent(obs)
            results[f"charts/latency_ms_b{batch}"] = mean_call_ms(lambda: agent(obs), repeats, device_timer(device))
    finally:
        agent.train(was_training)
    return results
