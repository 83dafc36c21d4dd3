"""The association transformer: the seed's architecture and our pair-aware variant.

Both project the track rows (features + embedding) and the detection rows to one width, run a
transformer encoder over the tracks and one over the detections, and score every (track,
detection) pair with an MLP. ``pair_inputs=True`` (ours, the default) also gives that MLP the
logged pair costs and gating mask plus geometry the tracker knows per pair (IoU, centre offset,
size ratio, embedding cosine); ``False`` is the seed's baseline. Feature normalisation (per-column
mean/spread from the training set, then clipped) lives in the model as fixed buffers, so the
exported ONNX graph takes the raw logged rows.

Output: per detection, logits over its T candidate tracks plus one "no match" column (the loss
is a softmax over them) - or, with ``loss='bce'``, independent pair logits.
"""

from __future__ import annotations

import math

try:
    import torch
    from torch import nn
except ImportError as exc:  # training only; the tracker runs the ONNX export without torch
    raise ImportError('training needs torch: bash scripts/setup.sh --train '
                      '(installs the pinned CPU build)') from exc

PAIR_FEATURES = ('cost', 'mask', 'iou', 'dx', 'dy', 'log_w_ratio', 'log_h_ratio', 'cosine')
NEG = -1e4      # logit of a padded candidate (finite: an all-padded row stays NaN-free)
CLIP = 6.0      # normalised features are clipped to [-CLIP, CLIP]


class EncoderLayer(nn.Module):
    """Post-norm self-attention block with a key padding mask (plain ops: ONNX-friendly)."""

    def __init__(self, width: int, heads: int, ff: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff), nn.ReLU(), nn.Linear(ff, width))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """(B, N, W) rows, ``pad`` (B, N) True on padding -> (B, N, W)."""
        b, n = x.shape[0], x.shape[1]
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-1, -2)) * self.scale
        att = att.masked_fill(pad[:, None, None, :], NEG).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, self.heads * self.head_dim)
        x = self.norm1(x + self.proj(y))
        return self.norm2(x + self.ff(x))


class Encoder(nn.Module):
    """A stack of :class:`EncoderLayer`."""

    def __init__(self, width: int, heads: int, ff: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(width, heads, ff) for _ in range(layers))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """Every layer in turn."""
        for layer in self.layers:
            x = layer(x, pad)
        return x


def _pair_parts(track_feat: torch.Tensor, det_feat: torch.Tensor, cost: torch.Tensor,
                mask: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """PAIR_FEATURES of broadcastable track / detection rows (dense grid or gathered pairs).

    x and y are computed together (last axis of 2): fewer graph nodes at run time.
    """
    t_lo, t_hi = track_feat[..., 0:2], track_feat[..., 2:4]
    d_lo, d_hi = det_feat[..., 0:2], det_feat[..., 2:4]
    t_wh = (t_hi - t_lo).clamp(min=1e-6)
    d_wh = (d_hi - d_lo).clamp(min=1e-6)
    i_wh = (torch.minimum(t_hi, d_hi) - torch.maximum(t_lo, d_lo)).clamp(min=0)
    inter = i_wh[..., 0] * i_wh[..., 1]
    union = t_wh[..., 0] * t_wh[..., 1] + d_wh[..., 0] * d_wh[..., 1] - inter
    iou = inter / union.clamp(min=1e-9)
    centre = (((d_lo + d_hi) - (t_lo + t_hi)) * 0.5 / t_wh).clamp(-CLIP, CLIP)
    ratio = torch.log(d_wh / t_wh).clamp(-3, 3)
    return torch.cat([cost[..., None], mask[..., None], iou[..., None], centre, ratio,
                      cos[..., None]], dim=-1)


def _unit(emb: torch.Tensor) -> torch.Tensor:
    return emb / emb.norm(dim=-1, keepdim=True).clamp(min=1e-6)


def pair_features(track_feat: torch.Tensor, det_feat: torch.Tensor, track_emb: torch.Tensor,
                  det_emb: torch.Tensor, cost: torch.Tensor, mask: torch.Tensor
                  ) -> torch.Tensor:
    """(B, T, D, len(PAIR_FEATURES)) from the raw rows (boxes are x1/W, y1/H, x2/W, y2/H).

    IoU and the ratios are invariant to the per-axis image scale, so a wrong image size in a
    replay does not move them.
    """
    cos = (_unit(track_emb) @ _unit(det_emb).transpose(1, 2) if track_emb.shape[-1]
           else torch.zeros_like(cost))     # no embeddings (K = 0): the cosine is 0
    return _pair_parts(track_feat[:, :, None, :], det_feat[:, None, :, :], cost, mask, cos)


class AssocModel(nn.Module):
    """Scores every (track, detection) pair of a padded batch.

    Args:
        norm: ``track_mean``, ``track_std``, ``det_mean``, ``det_std`` lists (the card's
            normalisation).
        embed_dim: K, embedding columns per row (0: none).
        pair_inputs: our variant (True) or the seed's baseline (False).
        loss: 'softmax' (per detection over its tracks + "no match") or 'bce' (per pair).
        gated: score only the pairs the logged gating ``mask`` allows (the others get the
            padding logit; a label outside the gate becomes "no match", the one thing the
            tracker can do with it). The export then runs the pair MLP on those pairs only.
    """

    def __init__(self, norm: dict, *, embed_dim: int, width: int = 64, heads: int = 4,
                 layers: int = 1, ff: int = 128, hidden: int = 64, pair_inputs: bool = True,
                 loss: str = 'softmax', track_dim: int = 10, det_dim: int = 8,
                 gated: bool = False) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.gated = gated
        self.pair_inputs = pair_inputs
        self.loss_kind = loss
        for key in ('track_mean', 'track_std', 'det_mean', 'det_std'):
            self.register_buffer(key, torch.tensor(norm[key], dtype=torch.float32))
        self.track_in = nn.Linear(track_dim, width)
        self.det_in = nn.Linear(det_dim, width)
        self.track_emb_in = nn.Linear(embed_dim, width, bias=False) if embed_dim else None
        self.det_emb_in = nn.Linear(embed_dim, width, bias=False) if embed_dim else None
        self.track_enc = Encoder(width, heads, ff, layers)
        self.det_enc = Encoder(width, heads, ff, layers)
        self.pair_t = nn.Linear(width, hidden)
        self.pair_d = nn.Linear(width, hidden, bias=False)
        self.pair_p = (nn.Linear(len(PAIR_FEATURES), hidden, bias=False) if pair_inputs
                       else None)
        self.pair_out = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                      nn.Linear(hidden, 1))
        self.no_match = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def _rows(self, feat, emb, mean, std, lin, emb_lin):
        x = lin(((feat - mean) / std).clamp(-CLIP, CLIP))
        if emb_lin is not None:
            x = x + emb_lin(emb)
        return x

    def encode(self, track_feat, track_emb, det_feat, det_emb, track_pad, det_pad
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, W) track and (B, D, W) detection encodings."""
        t = self.track_enc(self._rows(track_feat, track_emb, self.track_mean, self.track_std,
                                      self.track_in, self.track_emb_in), track_pad)
        d = self.det_enc(self._rows(det_feat, det_emb, self.det_mean, self.det_std,
                                    self.det_in, self.det_emb_in), det_pad)
        return t, d

    def pair_logits(self, track_feat, track_emb, det_feat, det_emb, cost, mask, track_pad,
                    det_pad) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) pair logits and (B, D) "no match" logits."""
        t, d = self.encode(track_feat, track_emb, det_feat, det_emb, track_pad, det_pad)
        h = self.pair_t(t)[:, :, None, :] + self.pair_d(d)[:, None, :, :]
        if self.pair_p is not None:
            h = h + self.pair_p(pair_features(track_feat, det_feat, track_emb, det_emb, cost,
                                              mask))
        logits = self.pair_out(h).squeeze(-1)
        if self.gated:
            logits = logits.masked_fill(mask <= 0, NEG)
        logits = logits.masked_fill(track_pad[:, :, None], NEG)
        return logits, self.no_match(d).squeeze(-1)

    def sparse_pair_logits(self, track_feat, track_emb, det_feat, det_emb, cost, mask,
                           track_pad, det_pad) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`pair_logits` of ONE frame (B = 1), the pair MLP run on gated pairs only.

        The same numbers as the dense gated model (tested); what the export runs, since the
        gate leaves a few percent of the T x D pairs.
        """
        t, d = self.encode(track_feat, track_emb, det_feat, det_emb, track_pad, det_pad)
        gate = ((mask[0] > 0) & ~track_pad[0][:, None]).reshape(-1)
        flat = torch.nonzero(gate)[:, 0]            # gated pairs, row-major over (T, D)
        n_det = mask.shape[2]
        it, jd = torch.div(flat, n_det, rounding_mode='floor'), flat % n_det
        h = self.pair_t(t[0])[it] + self.pair_d(d[0])[jd]
        if self.pair_p is not None:
            cos = ((_unit(track_emb[0])[it] * _unit(det_emb[0])[jd]).sum(-1)
                   if self.embed_dim else torch.zeros_like(flat, dtype=cost.dtype))
            h = h + self.pair_p(_pair_parts(track_feat[0][it], det_feat[0][jd],
                                            cost.reshape(-1)[flat], mask.reshape(-1)[flat],
                                            cos))
        full = torch.full_like(cost.reshape(-1), NEG).scatter(0, flat,
                                                              self.pair_out(h).squeeze(-1))
        full = full.reshape(cost.shape)
        return full, self.no_match(d).squeeze(-1)

    def forward(self, track_feat, track_emb, det_feat, det_emb, cost, mask, track_pad, det_pad
                ) -> torch.Tensor:
        """(B, T, D) match probabilities (what the ONNX export returns)."""
        logits, none = self.pair_logits(track_feat, track_emb, det_feat, det_emb, cost, mask,
                                        track_pad, det_pad)
        return self.probabilities(logits, none)

    def probabilities(self, logits: torch.Tensor, none: torch.Tensor) -> torch.Tensor:
        """(B, T, D) match probabilities from pair and "no match" logits."""
        if self.loss_kind == 'bce':
            return torch.sigmoid(logits)
        full = torch.cat([logits.transpose(1, 2), none[:, :, None]], dim=-1)   # (B, D, T+1)
        return full.softmax(-1)[:, :, :-1].transpose(1, 2)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted loss of a collated batch and the (B, D, T+1) scores used for metrics."""
        logits, none = self.pair_logits(batch['track_feat'], batch['track_emb'],
                                        batch['det_feat'], batch['det_emb'], batch['cost'],
                                        batch['mask'], batch['track_pad'], batch['det_pad'])
        full = torch.cat([logits.transpose(1, 2), none[:, :, None]], dim=-1)
        w = batch['weight']
        target = batch['target'].clamp(min=0)
        if self.gated:      # a label the gate excludes: "no match" is all the tracker can do
            allowed = torch.cat([batch['mask'].transpose(1, 2),
                                 torch.ones_like(none)[:, :, None]], dim=-1)
            keep = allowed.gather(-1, target[:, :, None]).squeeze(-1) > 0
            target = torch.where(keep, target, torch.full_like(target, logits.shape[1]))
        denom = w.sum().clamp(min=1e-6)
        if self.loss_kind == 'bce':
            tm = logits.shape[1]
            onehot = torch.nn.functional.one_hot(target, tm + 1)[..., :tm].float()  # (B,D,T)
            valid = (~batch['track_pad'])[:, None, :].float() * w[:, :, None]
            pos = (onehot * valid).sum()
            neg = ((1 - onehot) * valid).sum()
            pos_weight = (neg / pos.clamp(min=1.0)).detach()
            per = torch.nn.functional.binary_cross_entropy_with_logits(
                logits.transpose(1, 2), onehot, reduction='none',
                pos_weight=pos_weight)
            loss = (per * valid).sum() / valid.sum().clamp(min=1e-6)
            scores = torch.cat([torch.sigmoid(logits.transpose(1, 2)),
                                torch.full_like(none[:, :, None], 0.5)], dim=-1)
            return loss, scores
        ce = torch.nn.functional.cross_entropy(full.transpose(1, 2), target, reduction='none')
        return (ce * w).sum() / denom, full.softmax(-1)


class SparseExport(nn.Module):
    """The export of a gated model: :meth:`AssocModel.sparse_pair_logits` for one frame."""

    def __init__(self, model: AssocModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, track_feat, track_emb, det_feat, det_emb, cost, mask, track_pad, det_pad
                ) -> torch.Tensor:
        """(1, T, D) match probabilities."""
        logits, none = self.model.sparse_pair_logits(track_feat, track_emb, det_feat, det_emb,
                                                     cost, mask, track_pad, det_pad)
        return self.model.probabilities(logits, none)
