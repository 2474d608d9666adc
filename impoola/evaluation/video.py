"""MP4 videos of episodes from Procgen's 512x512 `rgb_array` frames, written with imageio-ffmpeg."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from impoola.evaluation.registry import EvalSpec, Policy

with warnings.catch_warnings():  # imageio-ffmpeg 0.3 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import imageio_ffmpeg

RENDER_SIZE = 512


def downscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """Average `factor` x `factor` pixel blocks of an (H, W, 3) uint8 frame (rounded)."""
    if factor == 1:
        return frame
    total = np.zeros((frame.shape[0] // factor, frame.shape[1] // factor, frame.shape[2]), np.uint32)
    for dy in range(factor):
        for dx in range(factor):
            total += frame[dy::factor, dx::factor]
    return ((total + factor * factor // 2) // (factor * factor)).astype(np.uint8)


class VideoRecorder:
    """Appends RGB frames to one MP4 file (H.264, yuv420p); use as a context manager or call `close()`."""

    def __init__(self, path: str | Path, fps: int = 15, factor: int = 2, quality: float = 7.0):
        if factor < 1 or RENDER_SIZE % factor:
            raise ValueError(f"invalid video downscale factor {factor!r}; valid: a divisor of {RENDER_SIZE}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.factor = factor
        self.quality = quality
        self.num_frames = 0
        self._writer = None

    def append(self, frame: np.ndarray) -> None:
        """Add one (H, W, 3) uint8 frame (downscaled by `factor`)."""
        frame = np.ascontiguousarray(downscale(frame, self.factor))
        if self._writer is None:
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path), (frame.shape[1], frame.shape[0]), fps=self.fps, codec="libx264",
                quality=self.quality, ffmpeg_log_level="error",
            )
            self._writer.send(None)
        self._writer.send(frame)
        self.num_frames += 1

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> VideoRecorder:
        """The recorder itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the file."""
        self.close()


@dataclass
class EpisodeVideo:
    """A written video and the episodes it shows (one frame per agent step)."""

    path: Path
    num_frames: int
    returns: list[float]
    lengths: list[int]


def record_episodes(
    policy: Policy,
    env_id: str,
    path: str | Path,
    num_episodes: int = 1,
    *,
    distribution_mode: str = "easy",
    spec: EvalSpec = EvalSpec("test", "generalization", "test"),
    seed: int = 1,
    fps: int = 15,
    factor: int = 2,
) -> EpisodeVideo:
    """Play `num_episodes` episodes of one env of `spec`'s levels and write every frame the agent acted on to `path`.

    `policy` maps a uint8 (1, 3, 64, 64) observation batch to actions. Frames are Procgen's 512x512
    renders downscaled by `factor`; an episode of length L contributes L frames, episodes follow each other.
    With a noisy `spec` the agent sees the noised observations; the video shows the clean renders.
    """
    if num_episodes < 1:
        raise ValueError(f"invalid num_episodes {num_episodes!r}; must be >= 1")
    env = spec.make_env(env_id, distribution_mode, num_envs=1, seed=seed, num_threads=1, render_mode="rgb_array")
    returns: list[float] = []
    lengths: list[int] = []
    try:
        with VideoRecorder(path, fps, factor) as video:
            obs, _ = env.reset()
            while len(returns) < num_episodes:
                video.append(env.render()[0])
                obs, _, terminated, _, info = env.step(np.asarray(policy(obs)))
                if terminated[0]:
                    returns.append(float(info["episode_return"][0]))
                    lengths.append(int(info["episode_length"][0]))
    finally:
        env.close()
    return EpisodeVideo(Path(path), video.num_frames, returns, lengths)


def count_video_frames(path: str | Path) -> int:
    """Number of frames ffmpeg decodes from a video file."""
    frames = imageio_ffmpeg.read_frames(str(path))
    next(frames)  # metadata
    return sum(1 for _ in frames)
