"""Network statistics: parameters, multiply-accumulates and parameter bytes (torchinfo), and inference latency."""

from __future__ import annotations

import time

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


def _time_forward_ms(agent: nn.Module, obs: torch.Tensor, repeats: int) -> float:
    """Mean milliseconds per forward pass: CUDA events on a GPU, wall clock on a CPU."""
    if obs.device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(obs.device)
        start.record()
        for _ in range(repeats):
            agent(obs)
        end.record()
        torch.cuda.synchronize(obs.device)
        return start.elapsed_time(end) / repeats
    begin = time.perf_counter()
    for _ in range(repeats):
        agent(obs)
    return (time.perf_counter() - begin) * 1000.0 / repeats


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
            results[f"charts/latency_ms_b{batch}"] = _time_forward_ms(agent, obs, repeats)
    finally:
        agent.train(was_training)
    return results
