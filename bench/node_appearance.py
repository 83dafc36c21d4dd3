"""Cost of the built-in colour descriptor for 100 boxes, against a per-box crop loop.

    nice .venv/bin/python bench/node_appearance.py

The baseline is the obvious implementation: crop each box, histogram its upper and lower half
with ``np.histogramdd`` over all its pixels. Both run in this process on the same image and
boxes; medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from assoc_logger_ros.appearance import BINS, color_histogram  # noqa: E402


def per_box_loop(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Baseline: crop + histogramdd per box half, full resolution."""
    out = []
    edges = [np.linspace(0, 256, BINS + 1)] * 3
    for x1, y1, x2, y2 in boxes.astype(int):
        crop = image[max(y1, 0):y2, max(x1, 0):x2].reshape(-1, 3) if x2 > x1 else None
        h = (y2 - y1)
        halves = [image[y1:y1 + h // 2, x1:x2], image[y1 + h // 2:y2, x1:x2]]
        feats = [np.histogramdd(p.reshape(-1, 3), bins=edges)[0].ravel() for p in halves]
        v = np.sqrt(np.concatenate(feats) / max(crop.shape[0], 1))
        out.append(v / max(np.linalg.norm(v), 1e-12))
    return np.asarray(out, np.float32)


def timed(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boxes', type=int, default=100)
    parser.add_argument('--repeat', type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print('| image | boxes | color_histogram (ms) | per-box loop (ms) | speed-up |')
    print('|---|---|---|---|---|')
    for w, h in ((640, 480), (1920, 1080)):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        xy = rng.uniform(0, [w - 80, h - 200], (args.boxes, 2))
        size = rng.uniform([20, 50], [80, 200], (args.boxes, 2))
        boxes = np.concatenate([xy, xy + size], 1)
        mask = np.zeros((h, w), np.uint16)
        fast = timed(lambda i=image, b=boxes: color_histogram(i, b), args.repeat)
        fast_mask = timed(lambda i=image, b=boxes, m=mask: color_histogram(i, b, m), args.repeat)
        slow = timed(lambda i=image, b=boxes: per_box_loop(i, b), max(args.repeat // 4, 3))
        print(f'| {w}x{h} | {args.boxes} | {fast:.2f} (with mask {fast_mask:.2f}) | '
              f'{slow:.2f} | {slow / fast:.0f}x |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
