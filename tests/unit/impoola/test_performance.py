"""Speed options: channels-last equals NCHW in float32, bf16 autocasts the encoder, threads, host memory reuse, one
copy per env step, compile and TF32 choices, compile matching eager."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import ppo_training
from impoola.models.agents import build_agent
from impoola.models.encoders import ModelOptions
from impoola.performance import (
    PerformanceOptions, StepPacking, StepTransfer, allows_tf32, bf16_speed_note, compile_agent, compiled,
    configure_torch, cpu_features, prepare_agent, resolved_compile_mode,
)
from impoola.ppo import ppo_loss
from support.runs import tiny_ppo_args


CPU = torch.device("cpu")
OBS = torch.randint(0, 256, (6, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def agent_pair(options: ModelOptions, perf: PerformanceOptions):
    """A plain NCHW float32 PPO agent and a copy prepared with `perf` (same weights)."""
    torch.manual_seed(0)
    plain = build_agent("ppo", options, 15)
    fast = build_agent("ppo", options, 15)
    fast.load_state_dict(plain.state_dict())
    return plain, prepare_agent(fast, perf, CPU)


def grads(agent) -> dict[str, torch.Tensor]:
    logits, value = agent(OBS)
    (logits.logsumexp(-1).sum() + value.square().sum()).backward()
    return {name: p.grad for name, p in agent.named_parameters()}


@pytest.mark.parametrize("options", [ModelOptions(encoder="impoola", scale=2), ModelOptions(encoder="impala", scale=1),
                                     ModelOptions(encoder="nature", scale=1)], ids=["impoola", "impala", "nature"])
def test_channels_last_float32_equals_nchw(options):
    plain, fast = agent_pair(options, PerformanceOptions())
    first_conv = fast.encoder.network[0] if options.encoder == "nature" else fast.encoder.network[0].conv
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(plain(OBS), fast(OBS)):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    expected, got = grads(plain), grads(fast)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-3, atol=1e-5, msg=name)
    assert fast.state_dict().keys() == plain.state_dict().keys()  # checkpoints load either way


def test_bf16_autocasts_the_encoder_only():
    plain, fast = agent_pair(ModelOptions(encoder="impoola", scale=1), PerformanceOptions(precision="bf16"))
    assert fast.encoder.autocast_dtype == torch.bfloat16 and all(p.dtype == torch.float32 for p in fast.parameters())
    logits, value = fast(OBS)
    assert logits.dtype == value.dtype == torch.float32  # heads and distributions stay float32
    reference_logits, reference_value = plain(OBS)
    torch.testing.assert_close(value, reference_value, rtol=0.05, atol=0.05)  # bf16 rounding, not a different net
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads(fast).values())


def test_options_validate_and_configure_threads():
    with pytest.raises(ValueError, match="invalid precision 'fp16'"):
        PerformanceOptions(precision="fp16")
    with pytest.raises(ValueError, match="invalid torch_threads 0"):
        PerformanceOptions(torch_threads=0)
    before = torch.get_num_threads()
    try:
        configure_torch(PerformanceOptions(torch_threads=1), CPU)
        assert torch.get_num_threads() == 1
        assert not torch.distributions.Distribution._validate_args  # argument checks would sync every step
        configure_torch(PerformanceOptions(), CPU)
        assert torch.get_num_threads() == 1  # None keeps the current setting
    finally:
        torch.set_num_threads(before)
        torch.distributions.Distribution.set_default_validate_args(True)
    assert set(cpu_features()) == {"name", "simd", "avx512_bf16", "amx"}


@pytest.mark.parametrize("avx512_bf16, amx, says",
                         [(False, False, "emulated"), (True, False, "no AMX"), (True, True, None)])
def test_bf16_speed_note_follows_the_cpus_bf16_units(monkeypatch, capsys, avx512_bf16, amx, says):
    """bf16 warns where it measured slower than float32: emulated, or AVX512-BF16 without AMX (docs/speed.md)."""
    import impoola.performance as performance
    features = {"name": "a CPU", "simd": "AVX512", "avx512_bf16": avx512_bf16, "amx": amx}
    monkeypatch.setattr(performance, "cpu_features", lambda: features)  # the host's CPU cannot be swapped
    note = bf16_speed_note(CPU)
    assert (note is None) if says is None else (note.startswith("warning: --precision bf16") and says in note)
    before = torch.get_num_threads()
    configure_torch(PerformanceOptions(precision="bf16"), CPU)
    torch.set_num_threads(before)
    torch.distributions.Distribution.set_default_validate_args(True)
    assert capsys.readouterr().err == ("" if note is None else note + "\n")


FAULTS_PER_STEP = """
import resource, sys, torch
from impoola.performance import PerformanceOptions, configure_torch
configure_torch(PerformanceOptions(reuse_host_memory=sys.argv[1] == "on"), torch.device("cpu"))
layer = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2, 1))
x = torch.rand(128, 3, 64, 64)
for step in range(8):  # each step allocates and frees 64 MiB activations and gradients
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    layer(x).sum().backward()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_freed_host_memory_is_reused_instead_of_page_faulted_back():
    def late_faults(setting: str) -> int:
        out = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, setting], capture_output=True, text=True,
                             check=True)
        return sum(int(line) for line in out.stdout.split()[-4:])

    reused, default = late_faults("on"), late_faults("off")
    assert default > 4 * 16_384  # glibc's default: every 64 MiB tensor is a fresh mmap, 16,384 faults of 4 KiB
    assert reused < default / 4, (reused, default)


def test_step_transfer_on_cpu_is_zero_copy():
    obs = np.random.default_rng(0).integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    to_device = StepTransfer(4, (3, 8, 8), CPU)
    assert not to_device.packed  # the default on a CPU
    o, r, d = to_device(obs, np.arange(4, dtype=np.float64), np.array([True, False, False, True]))
    assert o.data_ptr() == obs.ctypes.data
    assert r.dtype == d.dtype == torch.float32 and r.tolist() == [0, 1, 2, 3] and d.tolist() == [1, 0, 0, 1]


def random_step(rng: np.random.Generator, num_envs: int, obs_shape: tuple[int, ...]):
    """Observations, float32 rewards with the awkward bit patterns (-0, inf, NaN, subnormal) and dones."""
    obs = rng.integers(0, 256, (num_envs, *obs_shape), dtype=np.uint8)
    rewards = rng.normal(size=num_envs).astype(np.float32)
    rewards[:4] = [-0.0, np.inf, np.nan, np.finfo(np.float32).smallest_subnormal]
    return obs, rewards, rng.random(num_envs) < 0.5


@pytest.mark.parametrize("num_envs, obs_shape", [(64, (3, 64, 64)), (5, (1, 3, 3)), (7, (3, 5, 7))],
                         ids=["procgen", "unaligned", "odd"])
def test_step_packing_round_trips_bit_for_bit(num_envs, obs_shape):
    rng = np.random.default_rng(1)
    layout = StepPacking(num_envs, obs_shape)
    assert layout.rewards_offset % 4 == 0 and layout.rewards_offset >= layout.obs_bytes  # float32-aligned rewards
    buffer = torch.full((layout.nbytes,), 0xAB, dtype=torch.uint8)
    for _ in range(2):  # the second step overwrites the first in place
        obs, rewards, dones = random_step(rng, num_envs, obs_shape)
        layout.pack(buffer.numpy(), obs, rewards, dones)
        o, r, d = layout.unpack(buffer)
        assert o.dtype == torch.uint8 and o.shape == (num_envs, *obs_shape) and np.array_equal(o.numpy(), obs)
        assert r.dtype == torch.float32 and r.numpy().tobytes() == rewards.tobytes()  # bit for bit, NaN and -0 too
        assert d.dtype == torch.float32 and d.tolist() == dones.astype(np.float32).tolist()


def test_packed_step_transfer_on_cpu_equals_the_plain_one():
    """The packed path of CUDA runs (pack, one copy, views) on the CPU, a plain copy in place of the transfer."""
    rng = np.random.default_rng(2)
    packed, plain = StepTransfer(6, (3, 8, 8), CPU, packed=True), StepTransfer(6, (3, 8, 8), CPU)
    assert packed.copied is None and not packed.host.is_pinned()
    previous = previous_obs = None
    for _ in range(3):
        obs, rewards, dones = random_step(rng, 6, (3, 8, 8))
        got, expected = packed(obs, rewards.astype(np.float64), dones), plain(obs, rewards, dones)
        for a, b in zip(got, expected):
            assert a.dtype == b.dtype and a.shape == b.shape and a.numpy().tobytes() == b.numpy().tobytes()
        assert got[0].data_ptr() != obs.ctypes.data and got[0].data_ptr() != packed.host.data_ptr()
        if previous is not None:  # each step's tensors are its own copy: the next step leaves them as they were
            assert torch.equal(previous[0], previous_obs)
        previous, previous_obs = got, torch.from_numpy(obs.copy())


def test_compile_mode_and_tf32_choice():
    cuda = torch.device("cuda")  # a device name only: nothing runs on it
    assert resolved_compile_mode(PerformanceOptions(), cuda) == "reduce-overhead"  # CUDA graphs
    assert resolved_compile_mode(PerformanceOptions(), CPU) is None
    assert resolved_compile_mode(PerformanceOptions(compile_mode="max-autotune"), CPU) == "max-autotune"
    assert resolved_compile_mode(PerformanceOptions(compile_mode="default"), cuda) == "default"
    assert allows_tf32(PerformanceOptions(precision="bf16"), cuda)
    assert not allows_tf32(PerformanceOptions(), cuda)  # float32 keeps torch's own settings
    assert not allows_tf32(PerformanceOptions(precision="bf16"), CPU)


@pytest.mark.cuda
def test_step_transfer_on_cuda_is_one_copy_without_sync():
    device = torch.device("cuda")
    rng = np.random.default_rng(0)
    to_device = StepTransfer(64, (3, 64, 64), device)
    assert to_device.packed and to_device.host.is_pinned()
    on_cpu = StepTransfer(64, (3, 64, 64), CPU, packed=True)
    steps = [random_step(rng, 64, (3, 64, 64)) for _ in range(3)]
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = [to_device(*step) for step in steps]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    for step, tensors in zip(steps, got):  # every step keeps its own device copy, equal bit for bit to the CPU's
        for a, b in zip(tensors, on_cpu(*step)):
            assert a.device.type == "cuda" and a.cpu().numpy().tobytes() == b.numpy().tobytes()


@pytest.mark.slow
def test_compile_matches_eager_and_trains(tmp_path):
    plain, fast = agent_pair(ModelOptions(encoder="impoola", scale=1), PerformanceOptions(compile=True))
    compile_agent(fast, PerformanceOptions(compile=True), CPU)
    start = time.perf_counter()
    with torch.inference_mode():
        for a, b in zip(plain(OBS), fast(OBS)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    loss_fn = compiled(ppo_loss, PerformanceOptions(compile=True), CPU)
    logits, value = fast(OBS)
    out = loss_fn(logits, value, torch.zeros(6, dtype=torch.long), torch.zeros(6), torch.zeros(6), torch.ones(6),
                  torch.randn(6))
    out.loss.backward()
    assert fast.actor.weight.grad is not None
    print(f"compile warm-up {time.perf_counter() - start:.1f} s")
    args = tiny_ppo_args(tmp_path, run_name="compiled", num_eval_episodes=2, num_final_eval_episodes=0, compile=True)
    ppo_training.main(args)
    rows = [json.loads(line) for line in (tmp_path / "compiled" / "metrics.jsonl").open()]
    assert rows[0]["charts/total_network_params"] == 110_160 and "scores/eval_avg_return_train" in rows[1]
