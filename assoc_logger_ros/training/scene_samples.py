"""Training samples from generated scenes (tests, CI and the generated-scene benchmark).

Each seed is one session: a fresh :class:`~assoc_logger_ros.pipeline.Pipeline` tracks the scene
and writes its samples, with ground-truth identities, into one directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assoc_logger_ros.config import resolve
from assoc_logger_ros.pipeline import Pipeline
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene


def write_scene_samples(out: str | Path, seeds: Iterable[int], *, num_frames: int = 120,
                        embed_dim: int = 32, scene: dict[str, Any] | None = None,
                        settings: dict[str, Any] | None = None) -> int:
    """Track one generated scene per seed into ``out`` (session ``scene<seed>``); frames run."""
    frames_run = 0
    for seed in seeds:
        s = resolve({'log_dir': str(out), 'log_min_free_mb': 0.0, 'log_embed_dim': embed_dim,
                     'log_wait_when_full': True, 'log_writer': 'thread', 'log_fsync': False,
                     **(settings or {})}, env={})
        p = Pipeline(s, session_id=f'scene{seed}', source='scene')
        try:
            cfg = SceneConfig(seed=seed, num_frames=num_frames, **(scene or {}))
            for frame in generate_scene(cfg).to_frames():
                p.process(frame)
                frames_run += 1
        finally:
            p.close()
    return frames_run
