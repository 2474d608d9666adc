"""Training speed: bf16 autocast, channels-last, torch.compile, thread counts and the rollout's host↔device copies.

The defaults keep the published numerics (float32, no compile). Channels-last is on by default, a fixed choice
rather than one detected per machine: float32 results equal NCHW up to rounding, and the convolutions and
max-pools of the encoder run faster in it (docs/speed.md). bf16 autocasts the encoder only; its latent, the
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

from impoola.options import Checked, Int, Maybe

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters
Fn = TypeVar("Fn", bound=Callable)


@dataclass(frozen=True)
class PerformanceOptions(Checked):
    """Speed: numerics, compilation, memory format and threads (the defaults keep the published numerics)."""

    precision: Literal["float32", "bf16"] = "float32"
    """float32 (as published) or bf16: the encoder under bf16 autocast (CUDA, or CPUs with AVX512-BF16/AMX; CUDA also
    turns on TF32)"""
    compile: bool = False
    """torch.compile the networks' forward/backward and PPO's loss (CUDA graphs on CUDA); pays off on GPUs, not CPUs"""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | None = None
    """torch.compile mode (default: reduce-overhead, i.e. CUDA graphs, on CUDA; default on CPU)"""
    channels_last: bool = True
    """channels-last memory format for the encoder (float32 results equal NCHW up to rounding)"""
    torch_threads: Maybe(Int(1, 1024)) = None
    """torch intra-op threads (default: torch's own, the cores this process may use; Procgen and torch take turns)"""
    reuse_host_memory: bool = True
    """keep freed CPU memory in the process for the next step (glibc malloc: no mmap'd chunks, no trimming) instead
    of page-faulting every large tensor back in (docs/speed.md: 1.1-1.3x PPO update speed on a CPU; the process
    keeps its peak memory until it exits)"""


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
                 env_threads: int, idle_threads_sleep: bool) -> str:
    """What a run runs on, e.g. `cpu (Intel Xeon), 2 spinning torch + 2 Procgen threads | float32 channels-last |
    impoola_s2: 1,198,128 parameters` (the progress display's first line; `idle_threads_sleep`: impoola/openmp.py)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_features()["name"]
    waiting = "sleeping" if idle_threads_sleep else "spinning"
    threads = f"{torch.get_num_threads()} {waiting} torch + " if device.type == "cpu" else ""
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


def allows_tf32(options: PerformanceOptions, device: torch.device) -> bool:
    """Whether TF32 matrix math is turned on: with bf16 on CUDA only (float32 runs keep torch's own settings)."""
    return options.precision == "bf16" and device.type == "cuda"


def configure_torch(options: PerformanceOptions, device: torch.device) -> None:
    """Process-wide settings: torch threads, malloc reuse, no distribution argument checks (each a device sync), TF32
    with bf16."""
    if options.reuse_host_memory:
        keep_freed_host_memory()
    if options.torch_threads is not None:
        torch.set_num_threads(options.torch_threads)
    torch.distributions.Distribution.set_default_validate_args(False)
    if allows_tf32(options, device):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if options.precision == "bf16":
        note = bf16_speed_note(device)
        if note:
            print(note, file=sys.stderr)


def bf16_speed_note(device: torch.device) -> str | None:
    """What --precision bf16 costs on `device` where it is not faster than float32: emulated bf16 (no AVX512-BF16/AMX),
    or AVX512-BF16 without AMX's matrix units (docs/speed.md: 0.6x float32 channels-last's loop speed there)."""
    if not native_bf16(device):
        return f"warning: --precision bf16 on {describe_device(device)}"
    if device.type == "cpu" and not cpu_features()["amx"]:
        return ("warning: --precision bf16 on a CPU with AVX512-BF16 but no AMX: measured at 0.6x the speed of the "
                "float32 default on such a CPU (docs/speed.md); bf16 pays off with AMX or on CUDA")
    return None


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


class StepPacking:
    """Byte layout of one env step in one uint8 buffer: observations (uint8), rewards (float32), dones (bool).

    The rewards start at the first 4-byte boundary after the frames, so that both numpy and torch can view them as
    float32 in place. `pack` writes a step into a host buffer; `unpack` views a (copied) buffer as the step.
    """

    def __init__(self, num_envs: int, obs_shape: tuple[int, ...]):
        self.obs_shape = (num_envs, *obs_shape)
        self.obs_bytes = math.prod(self.obs_shape)
        self.rewards_offset = -(-self.obs_bytes // 4) * 4
        self.dones_offset = self.rewards_offset + 4 * num_envs
        self.nbytes = self.dones_offset + num_envs

    def pack(self, buffer: np.ndarray, obs: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Write one step into `buffer` (uint8, `nbytes` long); rewards are cast to float32, dones to bool."""
        buffer[: self.obs_bytes].reshape(self.obs_shape)[...] = obs
        buffer[self.rewards_offset: self.dones_offset].view(np.float32)[...] = rewards
        buffer[self.dones_offset: self.nbytes].view(np.bool_)[...] = dones

    def unpack(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(observations uint8, rewards float32, dones float32) of a packed buffer, on its device."""
        return (packed[: self.obs_bytes].view(self.obs_shape),
                packed[self.rewards_offset: self.dones_offset].view(torch.float32),
                packed[self.dones_offset: self.nbytes].view(torch.bool).float())


class StepTransfer:
    """One env step's observations, rewards and dones to the device in one copy (zero-copy views on the CPU).

    Packed (the default on CUDA), they are written into one host buffer (pinned on CUDA) and sent with a single
    non-blocking copy; the returned tensors are views of that step's copy (observations uint8, rewards float32,
    dones float32). On the CPU, `packed=True` runs the same packing with a plain copy in place of the transfer.
    """

    def __init__(self, num_envs: int, obs_shape: tuple[int, ...], device: torch.device, packed: bool | None = None):
        self.device = device
        self.packed = device.type == "cuda" if packed is None else packed
        self.layout = StepPacking(num_envs, obs_shape)
        if self.packed:
            on_cuda = device.type == "cuda"
            self.host = torch.empty(self.layout.nbytes, dtype=torch.uint8, pin_memory=on_cuda)
            self.copied = torch.cuda.Event() if on_cuda else None

    def __call__(self, obs: np.ndarray, rewards: np.ndarray, dones: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(observations, rewards, dones) on the device."""
        if not self.packed:
            return (torch.from_numpy(obs).to(self.device), torch.from_numpy(np.asarray(rewards, np.float32)).to(
                self.device), torch.from_numpy(dones).to(self.device, torch.float32))
        if self.copied is not None:
            self.copied.synchronize()  # never waits in the training loops: the actions' copy back came after it
        self.layout.pack(self.host.numpy(), obs, rewards, dones)
        if self.copied is None:
            return self.layout.unpack(self.host.to(self.device, copy=True))
        packed = self.host.to(self.device, non_blocking=True)
        self.copied.record()
        return self.layout.unpack(packed)


def select_device(use_cuda: bool) -> torch.device:
    """CUDA when asked for and available, else the CPU."""
    return torch.device("cuda" if use_cuda and torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class DeviceOptions(Checked):
    """Speed: the device and CPU threads (the option group of the commands that load a saved agent)."""

    cuda: bool = True
    """use the GPU when one is available"""
    num_threads: Maybe(Int(1, 1024)) = None
    """torch CPU threads and Procgen worker threads (default: torch's and min(4, CPUs))"""

    def apply(self) -> torch.device:
        """Limit torch's CPU threads when a count is given; the device to use."""
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        return select_device(self.cuda)
