"""The learned stage-1 association cost at run time: the exported ONNX model on onnxruntime.

No torch here: a robot runs the model a training run exported (``model.onnx`` + its card
``model.json``, see :mod:`assoc_logger_ros.training.export`). The tracker calls
:meth:`LearnedCost.blend` where it builds the stage-1 cost (tracked + lost tracks x high-score
detections) and assigns on ``(1 - w) * classical + w * (1 - p)``, ``p`` the model's match
probability. Loading checks the card against the graph and this package's feature layout and
fails with one line naming the file and the mismatch; a failure during a run falls back to the
classical cost for the rest of the run, with one warning. The model only re-ranks or vetoes
pairs the classical gate allows.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.config import ConfigError
from assoc_logger_ros.tracking.snapshot import DET_FEATURE_COLUMNS, TRACK_FEATURE_COLUMNS

CARD_FORMAT = 'assoc_logger_ros association model'
CARD_VERSION = 1
MODEL_NAME = 'model.onnx'
CARD_NAME = 'model.json'
INPUTS = ('track_feat', 'track_emb', 'det_feat', 'det_emb', 'cost', 'mask', 'track_pad',
          'det_pad')
OUTPUT = 'prob'
# The model re-ranks (or vetoes) only pairs the classical gate allows (measured on MOT17
# half-val against letting it open new pairs: docs/learned_assoc.md).
GATE_TO_CLASSICAL = True


class LearnedCostError(ConfigError):
    """The model cannot be used; the message names the file and the problem."""


def _paths(weights: str | Path) -> tuple[Path, Path]:
    """(onnx file, card file) for a model folder, an .onnx file or a card file."""
    p = Path(weights).expanduser()
    if p.is_dir() or not p.suffix:
        return p / MODEL_NAME, p / CARD_NAME
    if p.suffix == '.json':
        return p.with_name(MODEL_NAME), p
    return p, p.with_suffix('.json')


def read_card(weights: str | Path) -> tuple[Path, dict[str, Any]]:
    """The ONNX path and the checked card of a model; :class:`LearnedCostError` if unusable."""
    if not str(weights).strip():
        raise LearnedCostError('transformer_assoc_enable is on but transformer_assoc_weights '
                               'is empty: give the model folder (model.onnx + model.json)')
    onnx_path, card_path = _paths(weights)
    if not card_path.is_file():
        raise LearnedCostError(f'{card_path}: model card not found (transformer_assoc_weights='
                               f'{weights})')
    if not onnx_path.is_file():
        raise LearnedCostError(f'{onnx_path}: ONNX model not found (transformer_assoc_weights='
                               f'{weights})')
    try:
        card = json.loads(card_path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LearnedCostError(f'{card_path}: unreadable model card ({exc})') from None
    fmt = card.get('format') if isinstance(card, dict) else None
    if fmt != CARD_FORMAT:
        raise LearnedCostError(f'{card_path}: not an association model card (format {fmt!r})')
    if card.get('card_version') != CARD_VERSION:
        raise LearnedCostError(f'{card_path}: card version {card.get("card_version")!r}, this '
                               f'package reads version {CARD_VERSION}')
    inputs = card.get('inputs') or {}
    want = {'track_feat': list(TRACK_FEATURE_COLUMNS), 'det_feat': list(DET_FEATURE_COLUMNS)}
    for name, cols in want.items():
        got = (inputs.get(name) or {}).get('columns')
        if got != cols:
            raise LearnedCostError(f'{card_path}: input {name} has columns {got}, this '
                                   f'package logs {cols}')
    k = card.get('embed_dim')
    if not isinstance(k, int) or k < 0:
        raise LearnedCostError(f'{card_path}: embed_dim {k!r} is not a width')
    return onnx_path, card


class LearnedCost:
    """One loaded model and its blend weight; :meth:`blend` is the tracker's hook."""

    def __init__(self, weights: str | Path, weight: float, *,
                 warn: Callable[[str], None] | None = None) -> None:
        self.onnx_path, self.card = read_card(weights)
        self.embed_dim = int(self.card['embed_dim'])
        self.weight = float(weight)
        self.warn = warn or logging.getLogger(__name__).warning
        self.failures = 0
        self.calls = 0
        self.active = True
        self.last_error = ''
        try:
            import onnxruntime as ort
        except ImportError:
            raise LearnedCostError('onnxruntime is not installed (a runtime dependency: '
                                   'pip install onnxruntime)') from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1      # the tracker's own core; never a thread pool
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(self.onnx_path), opts,
                                                 providers=['CPUExecutionProvider'])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise LearnedCostError(f'{self.onnx_path}: not a loadable ONNX model '
                                   f'({str(exc).splitlines()[0][:200]})') from None
        got = [i.name for i in self._session.get_inputs()]
        # a model without embeddings (embed_dim 0) has no embedding inputs in its graph
        no_emb = [n for n in INPUTS if n not in ('track_emb', 'det_emb')]
        if got != list(INPUTS) and not (self.embed_dim == 0 and got == no_emb):
            raise LearnedCostError(f'{self.onnx_path}: inputs {got}, expected {list(INPUTS)}')
        self._with_emb = got == list(INPUTS)
        emb_shape = self._session.get_inputs()[1].shape if self._with_emb else [1, 1, 0]
        if len(emb_shape) != 3 or (isinstance(emb_shape[2], int)
                                   and emb_shape[2] != self.embed_dim):
            raise LearnedCostError(f'{self.onnx_path}: track_emb shape {emb_shape} disagrees '
                                   f'with the card embed_dim {self.embed_dim}')
        outs = [o.name for o in self._session.get_outputs()]
        if outs != [OUTPUT]:
            raise LearnedCostError(f'{self.onnx_path}: outputs {outs}, expected [{OUTPUT!r}]')

    def _fit(self, emb: NDArray[np.float32] | None, rows: int) -> NDArray[np.float32]:
        if (emb is not None and emb.ndim == 2 and emb.shape == (rows, self.embed_dim)
                and emb.dtype == np.float32):
            return np.ascontiguousarray(emb).reshape(1, rows, self.embed_dim)   # no copy
        out = np.zeros((1, rows, self.embed_dim), np.float32)
        if emb is not None and emb.ndim == 2 and emb.shape[0] == rows:
            k = min(self.embed_dim, emb.shape[1])
            out[0, :, :k] = emb[:, :k]
        return out

    def probabilities(self, track_feat: NDArray, track_emb: NDArray | None, det_feat: NDArray,
                      det_emb: NDArray | None, cost: NDArray, mask: NDArray
                      ) -> NDArray[np.float32]:
        """(T, D) match probabilities of one frame (raises on a model failure)."""
        t, d = cost.shape
        feeds = {
            'track_feat': np.asarray(track_feat, np.float32).reshape(1, t, -1),
            'det_feat': np.asarray(det_feat, np.float32).reshape(1, d, -1),
            'cost': np.asarray(cost, np.float32).reshape(1, t, d),
            'mask': np.asarray(mask, np.float32).reshape(1, t, d),
            'track_pad': np.zeros((1, t), bool),
            'det_pad': np.zeros((1, d), bool),
        }
        if self._with_emb:
            feeds['track_emb'] = self._fit(track_emb, t)
            feeds['det_emb'] = self._fit(det_emb, d)
        prob = self._session.run([OUTPUT], feeds)[0]
        prob = np.asarray(prob, np.float32).reshape(t, d)
        if not np.isfinite(prob).all():
            raise FloatingPointError('the model returned non-finite probabilities')
        return prob

    def blend(self, cost: NDArray[np.float64], gate: NDArray[np.bool_] | None, thresh: float,
              inputs: Callable[[], tuple[NDArray, NDArray | None, NDArray, NDArray | None]]
              ) -> tuple[NDArray[np.float64], NDArray[np.float32] | None]:
        """Stage-1 cost blended with the model, and its probabilities (None: classical cost).

        Pairs outside the classical gate (class, ``thresh``) keep their classical cost, so they
        stay ineligible; eligible pairs get ``(1 - w) * cost + w * (1 - p)``.

        ``gate``: class agreement (None: all pairs); ``thresh``: the stage's cost limit (the
        model sees the classical eligibility mask); ``inputs()`` returns (track features,
        track embeddings, detection features, detection embeddings), built only when used.
        """
        if not self.active or cost.size == 0:
            return cost, None
        self.calls += 1
        try:
            gated = cost if gate is None else np.where(gate, cost, np.inf)
            mask = (gated < thresh).astype(np.float32)
            tf, te, df, de = inputs()
            prob = self.probabilities(tf, te, df, de, cost, mask)
        except Exception as exc:  # noqa: BLE001 - any model failure: classical cost, go on
            self.failures += 1
            self.active = False
            self.last_error = f'{type(exc).__name__}: {exc}'
            self.warn(f'learned association model {self.onnx_path} failed '
                      f'({self.last_error[:200]}); using the classical cost from now on')
            return cost, None
        w = self.weight
        blended = (1.0 - w) * cost + w * (1.0 - prob.astype(np.float64))
        # the model re-ranks (or vetoes) the pairs the classical gate allows, never adds one:
        # without embeddings it cannot re-identify, and a sparse problem stays sparse
        return (np.where(mask > 0, blended, cost) if GATE_TO_CLASSICAL else blended), prob


def load(cfg: Any) -> LearnedCost | None:
    """The model a :class:`~assoc_logger_ros.config.TrackerConfig` enables, else None."""
    if not getattr(cfg, 'transformer_assoc_enable', False):
        return None
    return LearnedCost(cfg.transformer_assoc_weights, cfg.transformer_assoc_weight)
