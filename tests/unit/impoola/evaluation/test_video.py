"""Episode videos: MP4 files that decode to the expected frame count."""

from __future__ import annotations

import numpy as np
import pytest

from impoola.evaluation.video import VideoRecorder, count_video_frames, downscale, record_episodes


def test_recorder_writes_decodable_mp4(tmp_path):
    rng = np.random.default_rng(0)
    with VideoRecorder(tmp_path / "v" / "clip.mp4", fps=10, factor=4) as video:
        for _ in range(7):
            video.append(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    assert video.num_frames == 7
    assert count_video_frames(tmp_path / "v" / "clip.mp4") == 7


def test_downscale_averages_blocks():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[:2, :2] = [10, 20, 30]
    frame[0, 0] = [13, 20, 30]
    assert downscale(frame, 2)[:, :, 0].tolist() == [[11, 0], [0, 0]]
    with pytest.raises(ValueError, match="valid: a divisor of 512"):
        VideoRecorder("x.mp4", factor=3)


def test_record_episodes_one_frame_per_step(tmp_path):
    rng = np.random.default_rng(0)
    video = record_episodes(lambda obs: rng.integers(0, 15, len(obs)), "bigfish", tmp_path / "ep.mp4",
                            num_episodes=1, seed=3, factor=4)
    assert len(video.lengths) == 1 and video.num_frames == sum(video.lengths) > 0
    assert count_video_frames(video.path) == video.num_frames
