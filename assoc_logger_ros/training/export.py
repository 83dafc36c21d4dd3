"""Export a trained model as ONNX plus its JSON card (what the tracker loads, without torch).

The card says everything the runtime checks before it trusts the model: the input layout (names,
shapes, feature columns), the embedding width, the normalisation baked into the graph, the
tracker stage it replaces and the threshold that selects its detections, plus where it came
from (sessions, metrics, package version).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any
import warnings

from assoc_logger_ros.tracking.learned_cost import (
    CARD_FORMAT,
    CARD_NAME,
    CARD_VERSION,
    INPUTS,
    MODEL_NAME,
    OUTPUT,
)
from assoc_logger_ros.tracking.snapshot import DET_FEATURE_COLUMNS, TRACK_FEATURE_COLUMNS
from assoc_logger_ros.training.model import PAIR_FEATURES, AssocModel, SparseExport, torch

OPSET = 17


def _package_version() -> str:
    try:
        from importlib.metadata import version
        return version('assoc_logger_ros')
    except Exception:  # noqa: BLE001 - a source checkout without an installed package
        import re
        setup = Path(__file__).resolve().parents[2] / 'setup.py'
        m = re.search(r"version='([^']+)'", setup.read_text()) if setup.is_file() else None
        return m.group(1) if m else 'unknown'


def export(model: AssocModel, out_dir: str | Path, *, training: dict[str, Any],
           metrics: dict[str, Any], track_thresh: float,
           drop_embeddings: bool = False) -> dict[str, Any]:
    """Write ``model.onnx`` and ``model.json`` into ``out_dir``; returns the card.

    ``drop_embeddings``: every training embedding was zero, so the embedding branch never
    contributed (no bias, cosine 0): the export leaves it out (``embed_dim`` 0), the same
    function on such inputs, less work per frame, and embeddings it never learned from are
    ignored at run time.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    if drop_embeddings and model.embed_dim:
        model = copy.deepcopy(model)
        model.track_emb_in = model.det_emb_in = None
        model.embed_dim = 0
    k = model.embed_dim
    t, d = 3, 4
    dummy = (torch.zeros(1, t, len(TRACK_FEATURE_COLUMNS)), torch.zeros(1, t, k),
             torch.zeros(1, d, len(DET_FEATURE_COLUMNS)), torch.zeros(1, d, k),
             torch.ones(1, t, d), torch.eye(t, d)[None], torch.zeros(1, t, dtype=torch.bool),
             torch.zeros(1, d, dtype=torch.bool))
    # a gated model runs its pair MLP on the gated pairs only (one frame per call)
    net = SparseExport(model) if model.gated else model
    axes = {'track_feat': {0: 'B', 1: 'T'}, 'track_emb': {0: 'B', 1: 'T'},
            'det_feat': {0: 'B', 1: 'D'}, 'det_emb': {0: 'B', 1: 'D'},
            'cost': {0: 'B', 1: 'T', 2: 'D'}, 'mask': {0: 'B', 1: 'T', 2: 'D'},
            'track_pad': {0: 'B', 1: 'T'}, 'det_pad': {0: 'B', 1: 'D'},
            OUTPUT: {0: 'B', 1: 'T', 2: 'D'}}
    tmp = out / (MODEL_NAME + '.tmp')
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter: no onnxscript needed; its deprecation notice is not ours
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(net, dummy, str(tmp), input_names=list(INPUTS),
                          output_names=[OUTPUT], dynamic_axes=axes, opset_version=OPSET,
                          dynamo=False)
    os.replace(tmp, out / MODEL_NAME)
    card = {
        'format': CARD_FORMAT,
        'card_version': CARD_VERSION,
        'onnx': MODEL_NAME,
        'package_version': _package_version(),
        'opset': OPSET,
        'inputs': {
            'track_feat': {'shape': ['B', 'T', len(TRACK_FEATURE_COLUMNS)], 'dtype': 'float32',
                           'columns': list(TRACK_FEATURE_COLUMNS)},
            'track_emb': {'shape': ['B', 'T', k], 'dtype': 'float32'},
            'det_feat': {'shape': ['B', 'D', len(DET_FEATURE_COLUMNS)], 'dtype': 'float32',
                         'columns': list(DET_FEATURE_COLUMNS)},
            'det_emb': {'shape': ['B', 'D', k], 'dtype': 'float32'},
            'cost': {'shape': ['B', 'T', 'D'], 'dtype': 'float32'},
            'mask': {'shape': ['B', 'T', 'D'], 'dtype': 'float32'},
            'track_pad': {'shape': ['B', 'T'], 'dtype': 'bool'},
            'det_pad': {'shape': ['B', 'D'], 'dtype': 'bool'},
        },
        'output': {'name': OUTPUT, 'shape': ['B', 'T', 'D'],
                   'meaning': 'probability that track t and detection d are the same object'},
        'embed_dim': k,
        'stage': 'stage 1: tracked + lost tracks x detections scoring above track_thresh',
        'track_thresh': track_thresh,
        'architecture': {'kind': 'pair' if model.pair_inputs else 'seed',
                         'pair_features': list(PAIR_FEATURES) if model.pair_inputs else [],
                         'loss': model.loss_kind,
                         'gated': model.gated,
                         'width': model.track_in.out_features,
                         'layers': len(model.track_enc.layers),
                         'heads': model.track_enc.layers[0].heads if model.track_enc.layers
                         else 0},
        'normalisation': {
            'rule': '(x - mean) / std, clipped to [-6, 6], per feature column (in the graph)',
            'track_mean': model.track_mean.tolist(), 'track_std': model.track_std.tolist(),
            'det_mean': model.det_mean.tolist(), 'det_std': model.det_std.tolist()},
        'training': training,
        'metrics': metrics,
    }
    tmpc = out / (CARD_NAME + '.tmp')
    tmpc.write_text(json.dumps(card, indent=1, sort_keys=True) + '\n', encoding='utf-8')
    os.replace(tmpc, out / CARD_NAME)
    return card
