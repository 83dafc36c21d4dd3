"""Appearance memory inside the real ByteTracker: re-identification and the scene ablation."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.sim.metrics import FrameBoxes, evaluate
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene
from assoc_logger_ros.tracking.byte_tracker import ByteTracker

FPS = 30.0


def person(x, y=300.0, h=120.0):
    return [x, y - h, x + 0.4 * h, y]


def run_reappearance(memory: bool) -> tuple[int, int]:
    """A person walks right, hides for 0.5 s, reappears 200 px behind where it was heading."""
    rng = np.random.default_rng(0)
    e_walker, e_other = rng.normal(size=(2, 32)).astype(np.float32)
    tracker = ByteTracker(TrackerConfig(), MemoryConfig(appear_memory_enable=memory))
    first = last = None
    for k in range(40):
        boxes = [person(500, 450)]                   # a bystander far away, never occluded
        embs = [e_other]
        if k < 20:
            boxes.append(person(200 + 5 * k))
            embs.append(e_walker)
        elif k >= 35:
            boxes.append(person(100 + 5 * (k - 35)))
            embs.append(e_walker)
        frame = make_frame(int(k * 1e9 / FPS), boxes, [0.9] * len(boxes), width=640,
                           height=480, frame_idx=k, embeddings=np.stack(embs))
        snap = tracker.update(frame)
        walker = np.flatnonzero(snap.output_det_index == len(boxes) - 1)
        if len(boxes) == 2 and walker.size:
            tid = int(snap.output_track_ids[walker[0]])
            first = tid if first is None else first
            last = tid
    return first, last


def test_lost_non_overlapping_track_is_reidentified_by_appearance():
    """With memory, a lost track whose predicted box no longer overlaps keeps its ID."""
    first, last = run_reappearance(memory=True)
    assert first is not None and last == first


def test_without_memory_the_same_person_gets_a_new_id():
    """Control: IoU alone cannot bridge the gap (the scenario really needs appearance)."""
    first, last = run_reappearance(memory=False)
    assert first is not None and last != first


def scene_idf1(scene, memory: bool) -> float:
    tracker = ByteTracker(TrackerConfig(), MemoryConfig(appear_memory_enable=memory))
    gt, pred = [], []
    for sf in scene.frames:
        snap = tracker.update(sf.to_frame())
        keep = sf.obj_visibility >= 0.2
        gt.append(FrameBoxes.of(sf.obj_ids[keep], sf.obj_boxes[keep]))
        pred.append(FrameBoxes.of(snap.output_track_ids, snap.output_boxes))
    return evaluate(gt, pred).idf1


@pytest.mark.slow
@pytest.mark.parametrize('seed', [0, 1])
def test_memory_improves_idf1_on_generated_scene(seed):
    """Crossings, crowds and long occlusions with noisy per-identity embeddings: IDF1 rises."""
    scene = generate_scene(SceneConfig(seed=seed, num_frames=300))
    without, with_memory = scene_idf1(scene, False), scene_idf1(scene, True)
    assert with_memory > without + 0.02, (without, with_memory)
