"""Gradient-boosted small trees in numpy, for the per-pair label scorer (no extra dependency).

Logistic loss, second-order leaf values, splits over per-feature quantile bins; a NaN has its
own bin and goes to whichever side of each split fits best, so nothing is imputed. A model is
plain numbers (edges, one base score, nested-list trees) that :func:`to_plain` and
:func:`from_plain` turn into JSON-ready data and back, checking every value on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

BINS = 32               # bins of finite values per feature; bin BINS holds the NaNs
MAX_DEPTH = 8           # what from_plain accepts (the fit uses 2 by default)
MAX_TREES = 5000
MAX_FEATURES = 256


@dataclass(frozen=True)
class BoostSettings:
    """How a model is fitted: rounds of trees, their depth, the step, the weight of positives."""

    rounds: int = 100
    depth: int = 2
    lr: float = 0.1
    pos_weight: float = 10.0
    lam: float = 1.0        # L2 on leaf values
    min_hess: float = 2.0   # the smallest summed hessian a leaf may have


@dataclass(frozen=True)
class Boosted:
    """A fitted model: per-feature bin edges, a base log-odds and the trees."""

    edges: tuple[NDArray[np.float64], ...]
    base: float
    trees: tuple[Any, ...]    # each a float leaf or [feature, bin, nan_left, left, right]

    def score(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N,) log-odds of the positive class for the (N, F) features ``x``."""
        b = to_bins(x, self.edges)
        return self.base + sum((tree_predict(t, b) for t in self.trees), np.zeros(len(b)))


def bin_edges(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Per feature: unique quantiles of its finite values (a value <= edges[k] is in bin <= k)."""
    qs = np.linspace(0, 1, BINS + 1)[1:-1]
    out = []
    for j in range(x.shape[1]):
        col = x[:, j][np.isfinite(x[:, j])]
        out.append(np.unique(np.quantile(col, qs)) if col.size else np.zeros(0))
    return tuple(out)


def to_bins(x: NDArray[np.float64], edges: tuple[NDArray[np.float64], ...]) -> NDArray[np.int64]:
    """(N, F) bin indices; NaN (and +-inf, never seen in training) in the NaN bin."""
    b = np.empty(x.shape, np.int64)
    for j, e in enumerate(edges):
        b[:, j] = np.searchsorted(e, x[:, j], side='left')
        b[~np.isfinite(x[:, j]), j] = BINS
    return b


def _best_split(b: NDArray[np.int64], g: NDArray[np.float64], h: NDArray[np.float64],
                s: BoostSettings) -> tuple[float, int, int, bool] | None:
    """(gain, feature, bin k, nan_left) of the best split 'bin <= k' of one node, or None."""
    n, f = b.shape
    flat = (b + np.arange(f) * (BINS + 1)).ravel()
    gs = np.bincount(flat, np.repeat(g, f), f * (BINS + 1)).reshape(f, BINS + 1)
    hs = np.bincount(flat, np.repeat(h, f), f * (BINS + 1)).reshape(f, BINS + 1)
    gt, ht = g.sum(), h.sum()
    base = gt * gt / (ht + s.lam)
    gl, hl = np.cumsum(gs[:, :BINS - 1], axis=1), np.cumsum(hs[:, :BINS - 1], axis=1)
    best = None
    for nan_left in (False, True):
        gl2 = gl + (gs[:, BINS:] if nan_left else 0)
        hl2 = hl + (hs[:, BINS:] if nan_left else 0)
        gr, hr = gt - gl2, ht - hl2
        gain = gl2 ** 2 / (hl2 + s.lam) + gr ** 2 / (hr + s.lam) - base
        gain[(hl2 < s.min_hess) | (hr < s.min_hess)] = -np.inf
        j, k = np.unravel_index(np.argmax(gain), gain.shape)
        if np.isfinite(gain[j, k]) and (best is None or gain[j, k] > best[0]):
            best = (float(gain[j, k]), int(j), int(k), nan_left)
    return best if best is not None and best[0] > 0 else None


def _fit_tree(b: NDArray[np.int64], g: NDArray[np.float64], h: NDArray[np.float64],
              depth: int, s: BoostSettings) -> Any:
    split = _best_split(b, g, h, s) if depth > 0 else None
    if split is None:
        return float(-s.lr * g.sum() / (h.sum() + s.lam))
    _, j, k, nan_left = split
    left = (b[:, j] <= k) | ((b[:, j] == BINS) & nan_left)
    return [j, k, nan_left, _fit_tree(b[left], g[left], h[left], depth - 1, s),
            _fit_tree(b[~left], g[~left], h[~left], depth - 1, s)]


def tree_predict(tree: Any, b: NDArray[np.int64]) -> NDArray[np.float64]:
    """One tree's values for the binned rows ``b``."""
    if not isinstance(tree, list):
        return np.full(len(b), tree)
    j, k, nan_left, lt, rt = tree
    left = (b[:, j] <= k) | ((b[:, j] == BINS) & nan_left)
    out = np.empty(len(b))
    out[left] = tree_predict(lt, b[left])
    out[~left] = tree_predict(rt, b[~left])
    return out


def fit(x: NDArray[np.float64], y: NDArray[np.float64], settings: BoostSettings | None = None
        ) -> Boosted:
    """Fit on the (N, F) features ``x`` and the 0/1 targets ``y`` (bins from ``x`` itself)."""
    settings = settings or BoostSettings()
    edges = bin_edges(x)
    b = to_bins(x, edges)
    w = np.where(y > 0, settings.pos_weight, 1.0)
    p0 = float(np.clip(np.average(y, weights=w), 1e-6, 1 - 1e-6))
    base = float(np.log(p0 / (1 - p0)))
    f = np.full(len(y), base)
    trees = []
    for _ in range(settings.rounds):
        p = 1 / (1 + np.exp(-f))
        tree = _fit_tree(b, w * (p - y), w * p * (1 - p), settings.depth, settings)
        trees.append(tree)
        f += tree_predict(tree, b)
    return Boosted(edges, base, tuple(trees))


def to_plain(model: Boosted) -> dict[str, Any]:
    """JSON-ready form of ``model``."""
    return {'bins': BINS, 'base': model.base, 'edges': [e.tolist() for e in model.edges],
            'trees': list(model.trees)}


def finite(value: Any, what: str) -> float:
    """``value`` as a float when it is a finite JSON number; ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f'{what} is not a finite number')
    return float(value)


def _check_tree(tree: Any, n_features: int, depth: int = 0) -> Any:
    if not isinstance(tree, list):
        return finite(tree, 'a leaf value')
    if depth >= MAX_DEPTH or len(tree) != 5:
        raise ValueError('a tree node is not [feature, bin, nan_left, left, right] within depth '
                         f'{MAX_DEPTH}')
    j, k, nan_left = tree[:3]
    if (isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < n_features
            or isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < BINS
            or not isinstance(nan_left, bool)):
        raise ValueError('a tree node has a feature, bin or NaN flag out of range')
    return [j, k, nan_left, _check_tree(tree[3], n_features, depth + 1),
            _check_tree(tree[4], n_features, depth + 1)]


def from_plain(data: Any, n_features: int) -> Boosted:
    """The model of :func:`to_plain`'s ``data``; ValueError naming the first bad value."""
    if not isinstance(data, dict) or data.get('bins') != BINS:
        raise ValueError(f'the model is not a mapping with bins {BINS}')
    edges, trees = data.get('edges'), data.get('trees')
    if not isinstance(edges, list) or len(edges) != n_features:
        raise ValueError(f'the model has not {n_features} edge lists')
    if not isinstance(trees, list) or len(trees) > MAX_TREES:
        raise ValueError(f'the model has no tree list of at most {MAX_TREES}')
    arrays = []
    for e in edges:
        if not isinstance(e, list) or len(e) > BINS - 1:
            raise ValueError(f'an edge list is not a list of at most {BINS - 1} numbers')
        a = np.array([finite(v, 'an edge') for v in e], np.float64)
        if a.size > 1 and not np.all(np.diff(a) > 0):
            raise ValueError('an edge list is not increasing')
        arrays.append(a)
    return Boosted(tuple(arrays), finite(data.get('base'), 'the base score'),
                   tuple(_check_tree(t, n_features) for t in trees))
