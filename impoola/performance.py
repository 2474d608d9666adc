"""Training speed: bf16 autocast, channels-last, torch.compile, thread counts and the rollout's host↔device copies.

The defaults keep the published numerics (float32, no compile). Channels-last is on by default, a fixed choice
rather than one detected per machine: float32 results equal NCHW up to rounding, and the convolutions and
max-pools of the encoder run faster in it (README, "Speed"). bf16 autocasts the encoder only; its latent, the
heads, the distributions and the losses stay float32.
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch
from torch import nn

from impoola.envs.games import check_choice

PRECISIONS = ("float32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters
Fn = TypeVar("Fn", bound=Callable)


@dataclass
class PerformanceOptions:
    precision: Literal["float32", "bf16"] = "float32"
    """float32 (as published) or bf16: the encoder under bf16 autocast (CUDA, or CPUs with AVX512-BF16/AMX; CUDA also
    turns on TF32)"""
    compile: bool = False
    """torch.compile the networks' forward/backward and PPO's loss (CUDA graphs on CUDA); pays off on GPUs, not CPUs"""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | None = None
    """torch.compile mode (default: reduce-overhead, i.e. CUDA graphs, on CUDA; default on CPU)"""
    channels_last: bool = True
    """channels-last memory format for the encoder (float32 results equal NCHW up to rounding)"""
    torch_threads: int | None = None
    """torch intra-op threads (default: torch's own, the cores this process may use; Procgen and torch take turns)"""
    reuse_host_memory: bool = False
    """keep freed CPU memory in the process for the next step (glibc malloc: no mmap'd chunks, no trimming) instead
    of page-faulting every large tensor back in (README, "Speed": up to 1.09x PPO steps/s on a CPU, more peak memory)"""

    def validate_performance(self) -> None:
        """Raise a one-line ValueError naming the first invalid speed option."""
        check_choice("precision", self.precision, PRECISIONS)
        if self.compile_mode is not None:
            check_choice("compile_mode", self.compile_mode, COMPILE_MODES)
        if self.torch_threads is not None and not (isinstance(self.torch_threads, int) and self.torch_threads >= 1):
            raise ValueError(f"invalid torch_threads {self.torch_threads!r}; valid: a positive integer")


def cpu_features() -> dict[str, str | bool]:
    """The CPU's name, torch's SIMD level and whether it has native bf16 (AVX512-BF16 or AMX)."""
    caps = torch.cpu.get_capabilities()
    return {"name": str(caps.get("cpu_name", "unknown CPU")), "simd": torch.backends.cpu.get_cpu_capability(),
            "avx512_bf16": bool(caps.get("avx512_bf16")), "amx": bool(caps.get("amx_tile"))}


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matrix math runs natively on `device` (CUDA with bf16 support, or AVX512-BF16/AMX CPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    features = cpu_features()
    return bool(features["avx512_bf16"] or features["amx"])


def describe_device(device: torch.device) -> str:
    """One line naming the device and its bf16 support, e.g. for benchmark tables and logs."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (bf16: {'native' if native_bf16(device) else 'no'})"
    f = cpu_features()
    bf16 = ", ".join(name for name, key in (("AVX512-BF16", "avx512_bf16"), ("AMX", "amx")) if f[key])
    return (f"{f['name']}, {torch.get_num_threads()} torch threads, SIMD {f['simd']}, native bf16: "
            + (bf16 or "no (no AVX512-BF16/AMX: bf16 is emulated and slower than float32)"))


def run_headline(device: torch.device, options: PerformanceOptions, model_name: str, model: nn.Module,
                 env_threads: int) -> str:
    """What a run runs on, e.g. `cpu (Intel Xeon), 2 torch + 2 Procgen threads | float32 channels-last |
    impoola_s2: 1,198,128 parameters` (the progress display's first line)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_features()["name"]
    threads = f"{torch.get_num_threads()} torch + " if device.type == "cpu" else ""
    layout = "channels-last" if options.channels_last else "NCHW"
    compiled_note = " compiled" if options.compile else ""
    parameters = sum(p.numel() for p in model.parameters())
    return (f"{device.type} ({name}), {threads}{env_threads} Procgen threads | {options.precision} {layout}"
            f"{compiled_note} | {model_name}: {parameters:,} parameters")


def keep_freed_host_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse: no mmap'd chunks, no trimming; False where libc is not glibc.

    By default each large CPU tensor (a 128-frame minibatch's activations are tens of MiB each) is mmap'd fresh and
    unmapped when freed, so every training step page-faults its working set back in: ~100k faults per PPO
    minibatch of Impoola τ=2, 10-30% of its time. Freed memory then stays in the process until it exits.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, -1))
    except (OSError, AttributeError):
        return False


def configure_torch(options: PerformanceOptions, device: torch.device) -> None:
    """Process-wide settings: torch threads, malloc reuse, no distribution argument checks (each a device sync), TF32
    with bf16."""
    options.validate_performance()
    if options.reuse_host_memory:
        keep_freed_host_memory()
    if options.torch_threads is not None:
        torch.set_num_threads(options.torch_threads)
    torch.distributions.Distribution.set_default_validate_args(False)
    if options.precision == "bf16" and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if options.precision == "bf16" and not native_bf16(device):
        print(f"warning: --precision bf16 on {describe_device(device)}", file=sys.stderr)


def prepare_agent(agent: nn.Module, options: PerformanceOptions, device: torch.device) -> nn.Module:
    """Move `agent` to `device`, to channels-last and give its encoder the autocast dtype; returns it (not compiled)."""
    agent = agent.to(device)
    if options.channels_last:
        agent = agent.to(memory_format=torch.channels_last)
    agent.encoder.autocast_dtype = torch.bfloat16 if options.precision == "bf16" else None
    return agent


def resolved_compile_mode(options: PerformanceOptions, device: torch.device) -> str | None:
    """The torch.compile mode: the option, else CUDA graphs (reduce-overhead) on CUDA and the default elsewhere."""
    if options.compile_mode is not None:
        return options.compile_mode
    return "reduce-overhead" if device.type == "cuda" else None


def compile_agent(agent: nn.Module, options: PerformanceOptions, device: torch.device) -> None:
    """Compile the agent's forward (and so its backward) in place when `options.compile`; state_dict keys stay.

    Call it after hook-based statistics (torchinfo) ran on the agent: hooks added to submodules later are not
    seen by the compiled forward. Calls of `agent.encoder` itself (dormant neurons, ReDo) stay eager.
    """
    if options.compile:
        agent.compile(mode=resolved_compile_mode(options, device), dynamic=False)


def compiled(fn: Fn, options: PerformanceOptions, device: torch.device) -> Fn:
    """`fn` compiled (static shapes) when `options.compile`, else `fn` itself."""
    if not options.compile:
        return fn
    return torch.compile(fn, mode=resolved_compile_mode(options, device), dynamic=False)  # type: ignore[return-value]


class StepTransfer:
    """One env step's observations, rewards and dones to the device in one copy (zero-copy views on the CPU).

    On CUDA they are packed into one pinned buffer and sent with a single non-blocking copy; the returned tensors
    are views of that step's device copy (observations uint8, rewards float32, dones float32).
    """

    def __init__(self, num_envs: int, obs_shape: tuple[int, ...], device: torch.device):
        self.device = device
        self.num_envs = num_envs
        self.obs_shape = (num_envs, *obs_shape)
        self.obs_bytes = math.prod(self.obs_shape)
        if device.type == "cuda":
            # Layout: observations (uint8), rewards (float32, 4-byte aligned after the frames), dones (bool).
            self.host = torch.empty(self.obs_bytes + 5 * num_envs, dtype=torch.uint8, pin_memory=True)
            packed = self.host.numpy()
            self.host_obs = packed[: self.obs_bytes].reshape(self.obs_shape)
            self.host_rewards = packed[self.obs_bytes: self.obs_bytes + 4 * num_envs].view(np.float32)
            self.host_dones = packed[self.obs_bytes + 4 * num_envs:].view(np.bool_)
            self.copied = torch.cuda.Event()

    def __call__(self, obs: np.ndarray, rewards: np.ndarray, dones: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(observations, rewards, dones) on the device."""
        if self.device.type != "cuda":
            return (torch.from_numpy(obs).to(self.device), torch.from_numpy(np.asarray(rewards, np.float32)).to(
                self.device), torch.from_numpy(dones).to(self.device, torch.float32))
        self.copied.synchronize()  # never waits in the training loops: the actions' copy back came after it
        self.host_obs[...] = obs
        self.host_rewards[...] = rewards
        self.host_dones[...] = dones
        packed = self.host.to(self.device, non_blocking=True)
        self.copied.record()
        n, o = self.num_envs, self.obs_bytes
        return (packed[:o].view(self.obs_shape), packed[o: o + 4 * n].view(torch.float32),
                packed[o + 4 * n:].view(torch.bool).float())
