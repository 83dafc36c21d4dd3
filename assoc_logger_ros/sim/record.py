"""Record a generated scene into a sample directory with the Pipeline (tests and benches)."""

from __future__ import annotations

import os
from pathlib import Path

from assoc_logger_ros.sim.scene import SceneConfig, generate_scene


def record_scene(directory: str | os.PathLike[str], config: SceneConfig) -> Path:
    """Samples of ``config``'s scene in ``directory`` (default settings, ground truth kept)."""
    from assoc_logger_ros.config import resolve
    from assoc_logger_ros.pipeline import Pipeline
    scene = generate_scene(config)
    p = Pipeline(resolve({'log_dir': str(directory), 'log_min_free_mb': 0.0,
                          'log_writer': 'thread'}, env={}))
    for fr in scene.frames:
        p.process(fr.to_frame(with_embeddings=False))
    p.close()
    return Path(directory)
