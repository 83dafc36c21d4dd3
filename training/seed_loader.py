"""Reference loader written the way training code for the seed schema reads samples.

It only uses what the seed document promises: ``manifest.jsonl`` lines with an ``npz`` entry,
``track_features``/``det_features`` concatenated with ``track_embeddings``/``det_embeddings``,
``cost_matrix``/``mask_matrix``, and labels from ``assigned_track_ids`` mapped through
``track_ids``. A test runs our samples through it unchanged; if this file needs a change to read
them, the schema broke compatibility.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


class SeedAssocDataset:
    """Samples of a log directory as (track inputs, detection inputs, costs, labels)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        with open(self.root / 'manifest.jsonl', encoding='utf-8') as fh:
            self.entries = [json.loads(line) for line in fh if line.strip()]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict[str, Any]:
        data = np.load(self.root / self.entries[i]['npz'])
        track_x = np.concatenate([data['track_features'], data['track_embeddings']], axis=1)
        det_x = np.concatenate([data['det_features'], data['det_embeddings']], axis=1)
        track_ids = data['track_ids']
        assigned = data['assigned_track_ids']
        row_of = {int(t): r for r, t in enumerate(track_ids)}
        # label per detection: row of its track in track_x, or -1 (unmatched / new track)
        labels = np.array([row_of.get(int(a), -1) for a in assigned], dtype=np.int64)
        meta = json.loads(str(data['metadata']))
        return {
            'track_x': track_x.astype(np.float32),
            'det_x': det_x.astype(np.float32),
            'cost': data['cost_matrix'],
            'mask': data['mask_matrix'],
            'labels': labels,
            'num_detections': int(data['detection_count'][0]),
            'frame_idx': int(data['frame_idx'][0]),
            'image_size': (meta['width'], meta['height']),
            'fps': meta['fps'],
        }

    def matched_pairs(self) -> int:
        """Positive (track, detection) pairs in the whole directory."""
        return sum(int((self[i]['labels'] >= 0).sum()) for i in range(len(self)))
