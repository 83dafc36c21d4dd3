"""A deterministic generated scene: walkers and carts with crossings, crowds and occlusions.

The project's own test and demo data (MOT data may not be redistributed). A scene is a
ground-plane world seen by a fixed camera: objects walk on lanes left and right (so they cross),
some in groups (crowding), some fast, and pass behind static pillars and behind each other
(long occlusions). Every frame holds the noisy detections a detector would give (boxes, scores,
classes, misses, false positives), their ground-truth identities, per-identity embeddings plus
noise (contaminated by the occluder when partly hidden, as a real descriptor would be), and on
demand an instance label mask and a cheap RGB image (each identity a distinct two-colour pattern,
so a colour-histogram descriptor can tell them apart).

Everything derives from ``SceneConfig.seed``: the same config gives the same scene, byte for
byte. Masks and images are rendered lazily (300 frames of 640x480 would be 460 MB), from the
stored object states, and are equally deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import math

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.frame import Frame, make_frame

PERSON, CART = 0, 1
CLASS_NAMES = ('person', 'cart')


@dataclass(frozen=True)
class SceneConfig:
    """What to generate; every field has a demo-friendly default.

    Rates are per second of scene time; fractions are per object or per detection.
    """

    seed: int = 0
    num_frames: int = 300              # frames emitted (dropped frames not counted)
    width: int = 640
    height: int = 480
    fps: float = 30.0
    num_walkers: int = 10              # objects in view at a time (target)
    cart_fraction: float = 0.15        # share of objects that are carts (class 1)
    group_fraction: float = 0.3        # share of spawns that come as a group of 2-3 (crowding)
    fast_fraction: float = 0.15        # share of objects moving 3x faster
    turn_rate: float = 0.3             # random direction/speed changes per second per object
    num_occluders: int = 2             # static pillars objects pass behind
    occluder_width: float = 0.14       # pillar width, share of the image width
    emb_dim: int = 64
    emb_noise: float = 0.35            # norm of the noise added to a unit identity embedding
    emb_missing: float = 0.05          # share of detections without an embedding
    box_noise: float = 0.03            # box jitter, share of the box height (std)
    score_noise: float = 0.06
    low_score_fraction: float = 0.08   # detections given a low score (ByteTrack stage 2)
    miss_rate: float = 0.03            # detectable objects the detector misses anyway
    min_visibility: float = 0.2        # objects less visible than this are not detected
    false_positives: float = 3.0       # false detections per second (low scores, gt id -1)
    drop_rate: float = 0.0             # share of frames dropped (gaps in stamps and indices)
    stamp_jitter: float = 0.0          # std of the frame interval, share of 1/fps
    sway: float = 0.0                  # dance-like side-to-side swing, share of the box height
    sway_period_s: float = 1.2         # period of that swing (phase differs per identity)
    start_ns: int = 1_700_000_000_000_000_000


@dataclass(frozen=True, eq=False)
class SceneFrame:
    """One emitted frame: the world state and the detections made from it.

    Object arrays (``obj_*``) cover every object in view; detection arrays (``det_*``) the
    detector's output in message order (``det_obj`` is the object each came from, -1 for a false
    positive).
    """

    frame_idx: int
    stamp_ns: int
    width: int
    height: int
    obj_ids: NDArray[np.int64]
    obj_boxes: NDArray[np.float64]
    obj_classes: NDArray[np.int64]
    obj_visibility: NDArray[np.float32]
    det_boxes: NDArray[np.float64]
    det_scores: NDArray[np.float64]
    det_classes: NDArray[np.int64]
    det_gt_ids: NDArray[np.int64]
    det_obj: NDArray[np.int64]
    det_embeddings: NDArray[np.float32]
    det_emb_valid: NDArray[np.bool_]
    scene: Scene = field(repr=False)

    def __len__(self) -> int:
        return int(self.det_boxes.shape[0])

    @property
    def det_visibility(self) -> NDArray[np.float32]:
        """Ground-truth visibility of each detection's object (1 for false positives)."""
        out = np.ones(len(self), np.float32)
        real = self.det_obj >= 0
        out[real] = self.obj_visibility[self.det_obj[real]]
        return out

    def render(self) -> tuple[NDArray[np.uint16], NDArray[np.uint8]]:
        """(instance label mask, RGB image) of this frame.

        The mask is an (H, W) uint16 label image (mono16; fits mono8 with < 256 detections):
        value ``k`` marks detection ``k - 1``, 0 is background, pillars and undetected objects.
        """
        labels, image = self.scene.rasterise(self, with_image=True)
        return self._det_mask(labels), image

    def mask(self) -> NDArray[np.uint16]:
        """The instance label mask alone (cheaper than :meth:`render`)."""
        labels, _ = self.scene.rasterise(self, with_image=False)
        return self._det_mask(labels)

    def image(self) -> NDArray[np.uint8]:
        """The synthetic RGB image alone, (H, W, 3) uint8."""
        return self.scene.rasterise(self, with_image=True)[1]

    def _det_mask(self, labels: NDArray[np.uint16]) -> NDArray[np.uint16]:
        lut = np.zeros(len(self.obj_ids) + 1, np.uint16)
        real = np.flatnonzero(self.det_obj >= 0)
        lut[self.det_obj[real] + 1] = real + 1
        return lut[labels]

    def to_frame(self, *, with_mask: bool = False, with_embeddings: bool = True,
                 with_gt: bool = True) -> Frame:
        """The tracker input for this frame (through :func:`make_frame`)."""
        frame = make_frame(
            self.stamp_ns, self.det_boxes, self.det_scores, width=self.width,
            height=self.height, class_ids=self.det_classes, frame_idx=self.frame_idx,
            embeddings=self.det_embeddings if with_embeddings else None,
            embedding_valid=self.det_emb_valid if with_embeddings else None,
            mask=self.mask() if with_mask else None,
            gt_ids=self.det_gt_ids if with_gt else None,
            class_names=[CLASS_NAMES[c] for c in self.det_classes])
        if not with_gt:
            return frame
        return replace(frame, gt_boxes=np.asarray(self.obj_boxes, np.float64).reshape(-1, 4),
                       gt_object_ids=np.asarray(self.obj_ids, np.int64))


@dataclass(eq=False)
class Scene:
    """A generated scene: its frames plus what rendering and evaluation need."""

    config: SceneConfig
    frames: list[SceneFrame]
    identity_embeddings: NDArray[np.float32]      # (I, E) unit vectors
    identity_classes: NDArray[np.int64]           # (I,)
    identity_colors: NDArray[np.uint8]            # (I, 2, 3) top / bottom colour
    occluders: NDArray[np.float64]                # (K, 4) xyxy pillars (in front of all)
    _background: NDArray[np.uint8] | None = field(default=None, repr=False)

    @property
    def num_identities(self) -> int:
        """Identities that appeared in the scene."""
        return int(self.identity_classes.shape[0])

    def to_frames(self, **kwargs) -> list[Frame]:
        """Every frame as tracker input (keyword arguments as :meth:`SceneFrame.to_frame`)."""
        return [f.to_frame(**kwargs) for f in self.frames]

    def background(self) -> NDArray[np.uint8]:
        """The static background with its pillars (computed once)."""
        if self._background is None:
            c = self.config
            y = np.linspace(0.0, 1.0, c.height)[:, None, None]
            sky = np.array([150, 160, 170], float)
            floor = np.array([95, 100, 90], float)
            bg = sky * (1 - y) + floor * y + np.zeros((1, c.width, 1))
            rng = np.random.default_rng(c.seed + 7)
            bg += rng.normal(0, 4.0, (c.height, c.width, 1))
            self._background = np.clip(bg, 0, 255).astype(np.uint8)
        return self._background

    def rasterise(self, frame: SceneFrame, *, with_image: bool
                  ) -> tuple[NDArray[np.uint16], NDArray[np.uint8] | None]:
        """Object label image (value i + 1 = object i of the frame) and optionally the image.

        Painted far to near (by the bottom edge: ground-plane depth), pillars last.
        """
        c = self.config
        labels = np.zeros((c.height, c.width), np.uint16)
        image = self.background().copy() if with_image else None
        order = np.argsort(frame.obj_boxes[:, 3], kind='stable')
        for i in order:
            ident = int(frame.obj_ids[i])
            sl, shape = _shape_pixels(frame.obj_boxes[i], int(frame.obj_classes[i]),
                                      c.width, c.height)
            if shape is None:
                continue
            labels[sl][shape] = i + 1
            if image is not None:
                _paint(image, sl, shape, self.identity_colors[ident],
                       int(frame.obj_classes[i]))
        for box in self.occluders:
            x1, y1, x2, y2 = _pix(box, c.width, c.height)
            labels[y1:y2, x1:x2] = 0
            if image is not None:
                image[y1:y2, x1:x2] = (70, 55, 45)
        return labels, image


def _pix(box: NDArray[np.float64], width: int, height: int) -> tuple[int, int, int, int]:
    r = np.ceil(np.asarray(box, float) - 0.5)
    return (int(np.clip(r[0], 0, width)), int(np.clip(r[1], 0, height)),
            int(np.clip(r[2], 0, width)), int(np.clip(r[3], 0, height)))


def _shape_pixels(box: NDArray[np.float64], cls: int, width: int, height: int):
    """Slice of the image covering the box and the object's pixels within it.

    People are ellipses filling their box, carts full rectangles.
    """
    x1, y1, x2, y2 = _pix(box, width, height)
    if x2 <= x1 or y2 <= y1:
        return None, None
    sl = (slice(y1, y2), slice(x1, x2))
    if cls == CART:
        return sl, np.ones((y2 - y1, x2 - x1), bool)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = max((box[2] - box[0]) / 2, 0.5), max((box[3] - box[1]) / 2, 0.5)
    xs = ((np.arange(x1, x2) + 0.5 - cx) / rx) ** 2
    ys = ((np.arange(y1, y2) + 0.5 - cy) / ry) ** 2
    return sl, (ys[:, None] + xs[None, :]) <= 1.0


def _paint(image: NDArray[np.uint8], sl, shape: NDArray[np.bool_], colors: NDArray[np.uint8],
           cls: int) -> None:
    """Two-colour pattern: top colour above 45 % of the height (shirt), bottom below."""
    h = shape.shape[0]
    split = int(round(0.45 * h)) if cls == PERSON else int(round(0.3 * h))
    region = image[sl]
    top = np.zeros_like(shape)
    top[:split] = shape[:split]
    region[top] = colors[0]
    region[shape & ~top] = colors[1]


def _palette(n: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """(n, 2, 3) distinct colour pairs: golden-angle hues, different for top and bottom."""
    out = np.zeros((n, 2, 3), np.uint8)
    for i in range(n):
        for part, (offset, value) in enumerate(((0.0, 0.95), (0.5, 0.55))):
            hue = (i * 0.618034 + offset + 0.1 * part * rng.random()) % 1.0
            out[i, part] = _hsv(hue, 0.85, value)
    return out


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass
class _Walker:
    ident: int
    cls: int
    x: float            # centre x
    foot: float         # bottom edge y (ground-plane depth)
    vx: float           # pixels per second at the reference height
    vy: float
    base_speed: float


class _World:
    """The ground-plane world: perspective, spawning and motion."""

    def __init__(self, cfg: SceneConfig, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.rng = rng
        self.top = 0.42 * cfg.height          # farthest foot line
        self.h_far, self.h_near = 0.16 * cfg.height, 0.48 * cfg.height
        self.walkers: list[_Walker] = []
        self.classes: list[int] = []
        self.t = 0.0                          # scene time (s), for the sway

    def height_at(self, foot: NDArray[np.float64] | float) -> NDArray[np.float64] | float:
        a = (np.asarray(foot) - self.top) / (self.cfg.height - self.top)
        return self.h_far + (self.h_near - self.h_far) * np.clip(a, 0.0, 1.0)

    def box(self, w: _Walker) -> NDArray[np.float64]:
        h = float(self.height_at(w.foot))
        if w.cls == CART:
            h *= 0.55
            half = 0.65 * h
        else:
            half = 0.19 * h
        x = w.x
        if self.cfg.sway > 0.0:     # phase from the identity: no draw from the scene's stream
            phase = 2.0 * math.pi * ((w.ident * 0.618034) % 1.0)
            x += self.cfg.sway * h * math.sin(2.0 * math.pi * self.t / self.cfg.sway_period_s
                                              + phase)
        return np.array([x - half, w.foot - h, x + half, w.foot])

    def spawn(self, inside: bool) -> None:
        c, rng = self.cfg, self.rng
        group = 1 if rng.random() >= c.group_fraction else int(rng.integers(2, 4))
        direction = 1.0 if rng.random() < 0.5 else -1.0
        foot = rng.uniform(self.top + 0.08 * c.height, c.height - 4)
        x0 = rng.uniform(0.1, 0.9) * c.width if inside else (
            -0.05 * c.width if direction > 0 else 1.05 * c.width)
        fast = rng.random() < c.fast_fraction
        speed = rng.uniform(0.5, 0.9) * self.h_near * (3.0 if fast else 1.0)
        vy = rng.uniform(-0.15, 0.15) * speed
        for g in range(group):
            cls = CART if rng.random() < c.cart_fraction else PERSON
            ident = len(self.classes)
            self.classes.append(cls)
            h = float(self.height_at(foot))
            self.walkers.append(_Walker(
                ident, cls, x0 - direction * g * 0.35 * h + rng.normal(0, 0.05 * h),
                float(np.clip(foot + rng.normal(0, 0.04 * h), self.top, c.height - 2)),
                direction * speed, vy, speed))

    def step(self, dt: float) -> None:
        c, rng = self.cfg, self.rng
        self.t += dt
        for w in self.walkers:
            if rng.random() < c.turn_rate * dt:
                scale = rng.uniform(0.2, 1.4)
                angle = rng.uniform(-0.6, 0.6)
                sign = 1.0 if w.vx >= 0 else -1.0
                if rng.random() < 0.1:
                    sign = -sign          # occasionally turn back
                w.vx = sign * w.base_speed * scale * math.cos(angle)
                w.vy = w.base_speed * scale * math.sin(angle) * 0.4
            # speeds are given for the nearest row; scale with perspective
            k = float(self.height_at(w.foot)) / self.h_near
            w.x += w.vx * k * dt
            w.foot += w.vy * k * dt
            if w.foot < self.top + 0.05 * c.height or w.foot > c.height - 2:
                w.vy = -w.vy
                w.foot = float(np.clip(w.foot, self.top + 0.05 * c.height, c.height - 2))
        margin = 0.1 * c.width
        self.walkers = [w for w in self.walkers if -margin < w.x < c.width + margin]


def generate_scene(cfg: SceneConfig | None = None) -> Scene:
    """Generate a scene (deterministic in ``cfg``); masks and images render on demand."""
    cfg = cfg or SceneConfig()
    rng = np.random.default_rng(cfg.seed)
    world = _World(cfg, rng)
    for _ in range(cfg.num_walkers):
        world.spawn(inside=True)
    occluders = _occluders(cfg, rng)
    # identity embeddings are drawn lazily in identity order from their own stream
    emb_rng = np.random.default_rng(cfg.seed + 1)
    emb_table: list[NDArray[np.float64]] = []
    det_rng = np.random.default_rng(cfg.seed + 2)
    scene = Scene(cfg, [], np.zeros((0, cfg.emb_dim), np.float32), np.zeros(0, np.int64),
                  np.zeros((0, 2, 3), np.uint8), occluders)
    dt_nom = 1.0 / cfg.fps
    t = 0.0
    idx = 0
    spawn_rate = cfg.num_walkers / 6.0     # per second, roughly replaces those leaving
    while len(scene.frames) < cfg.num_frames:
        if idx > 0:
            dt = dt_nom * max(0.2, 1.0 + cfg.stamp_jitter * rng.normal())
            t += dt
            world.step(dt)
            active = len(world.walkers)
            if active < cfg.num_walkers and rng.random() < spawn_rate * dt * 2:
                world.spawn(inside=False)
        dropped = idx > 0 and rng.random() < cfg.drop_rate
        if not dropped:
            while len(emb_table) < len(world.classes):
                v = emb_rng.normal(size=cfg.emb_dim)
                emb_table.append(v / np.linalg.norm(v))
            scene.identity_embeddings = np.asarray(emb_table, np.float32).reshape(
                -1, cfg.emb_dim)
            scene.identity_classes = np.asarray(world.classes, np.int64)
            scene.frames.append(_make_frame(scene, world, idx, t, det_rng))
        idx += 1
    scene.identity_colors = _palette(len(world.classes), np.random.default_rng(cfg.seed + 3))
    return scene


def _occluders(cfg: SceneConfig, rng: np.random.Generator) -> NDArray[np.float64]:
    k = cfg.num_occluders
    if k <= 0:
        return np.zeros((0, 4))
    w = cfg.occluder_width * cfg.width
    xs = (np.arange(k) + 0.5) / k * cfg.width + rng.uniform(-0.05, 0.05, k) * cfg.width
    return np.stack([xs - w / 2, np.full(k, 0.25 * cfg.height), xs + w / 2,
                     np.full(k, float(cfg.height))], axis=1)


def _make_frame(scene: Scene, world: _World, idx: int, t: float,
                rng: np.random.Generator) -> SceneFrame:
    cfg = scene.config
    walkers = world.walkers
    n = len(walkers)
    boxes = np.array([world.box(w) for w in walkers]).reshape(-1, 4)
    ids = np.array([w.ident for w in walkers], np.int64)
    classes = np.array([w.cls for w in walkers], np.int64)
    # keep objects with any part in view
    inview = ((boxes[:, 2] > 0) & (boxes[:, 0] < cfg.width) & (boxes[:, 3] > 0)
              & (boxes[:, 1] < cfg.height)) if n else np.zeros(0, bool)
    boxes, ids, classes = boxes[inview], ids[inview], classes[inview]
    stamp = cfg.start_ns + int(round(t * 1e9))
    proto = SceneFrame(idx, stamp, cfg.width, cfg.height, ids, boxes, classes,
                       np.zeros(len(ids), np.float32), *_empty_dets(cfg.emb_dim), scene)
    labels, _ = scene.rasterise(proto, with_image=False)
    vis, main_occ = _visibility(labels, boxes, classes, cfg)
    # detections: visible enough, not missed
    m = len(ids)
    det = (vis >= cfg.min_visibility) & (rng.random(m) >= cfg.miss_rate)
    obj = np.flatnonzero(det)
    h = boxes[obj, 3] - boxes[obj, 1]
    noise = rng.normal(0, cfg.box_noise, (obj.size, 4)) * h[:, None]
    dboxes = boxes[obj] + noise
    scores = np.clip(0.3 + 0.65 * vis[obj] + rng.normal(0, cfg.score_noise, obj.size), 0.0, 0.99)
    low = rng.random(obj.size) < cfg.low_score_fraction
    scores[low] = rng.uniform(0.15, 0.5, int(low.sum()))
    # embeddings: identity + noise, mixed with the main occluder's when partly hidden
    e_id = scene.identity_embeddings[ids[obj]].astype(np.float64)
    occ = main_occ[obj]
    e_occ = np.where((occ >= 0)[:, None], scene.identity_embeddings[ids[np.maximum(occ, 0)]],
                     0.0)
    v = vis[obj, None].astype(np.float64)
    emb = v * e_id + (1 - v) * e_occ
    emb += rng.normal(0, cfg.emb_noise / math.sqrt(cfg.emb_dim), emb.shape)
    valid = rng.random(obj.size) >= cfg.emb_missing
    # false positives: person-sized boxes anywhere on the floor, low scores, random appearance
    n_fp = int(rng.poisson(cfg.false_positives / cfg.fps))
    foot = rng.uniform(world.top + 0.05 * cfg.height, cfg.height, n_fp)
    fh = np.asarray(world.height_at(foot), float).reshape(-1)
    fx = rng.uniform(0, cfg.width, n_fp)
    fp_boxes = np.stack([fx - 0.19 * fh, foot - fh, fx + 0.19 * fh, foot], axis=1)
    fp_emb = rng.normal(0, 1.0 / math.sqrt(cfg.emb_dim), (n_fp, cfg.emb_dim))
    all_boxes = np.concatenate([dboxes, fp_boxes])
    order = rng.permutation(all_boxes.shape[0])   # message order is arbitrary
    emb_all = np.concatenate([emb, fp_emb]).astype(np.float32)
    valid_all = np.concatenate([valid, np.ones(n_fp, bool)])
    emb_all[~valid_all] = 0.0
    return SceneFrame(
        idx, stamp, cfg.width, cfg.height, ids, boxes, classes, vis,
        all_boxes[order], np.concatenate([scores, rng.uniform(0.1, 0.55, n_fp)])[order],
        np.concatenate([classes[obj], np.zeros(n_fp, np.int64)])[order],
        np.concatenate([ids[obj], np.full(n_fp, -1, np.int64)])[order],
        np.concatenate([obj, np.full(n_fp, -1, np.int64)])[order],
        emb_all[order], valid_all[order], scene)


def _empty_dets(dim: int) -> tuple:
    return (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64),
            np.zeros(0, np.int64), np.zeros((0, dim), np.float32), np.zeros(0, bool))


def _visibility(labels: NDArray[np.uint16], boxes: NDArray[np.float64],
                classes: NDArray[np.int64], cfg: SceneConfig
                ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """True visibility (visible pixels / full shape area) and each object's main occluder.

    The main occluder is the other object with most pixels inside this object's box (-1 when
    none: hidden by a pillar, the border, or not at all).
    """
    m = boxes.shape[0]
    if m == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    visible = np.bincount(labels.ravel(), minlength=m + 1)[1:m + 1].astype(np.float64)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    full = np.where(classes == CART, w * h, math.pi / 4 * w * h)
    vis = np.clip(visible / np.maximum(full, 1.0), 0.0, 1.0).astype(np.float32)
    occ = np.full(m, -1, np.int64)
    for i in np.flatnonzero(vis < 0.95):
        x1, y1, x2, y2 = _pix(boxes[i], cfg.width, cfg.height)
        counts = np.bincount(labels[y1:y2, x1:x2].ravel(), minlength=m + 1)
        counts[0] = 0
        counts[i + 1] = 0
        if counts.max() > 0:
            occ[i] = int(counts.argmax()) - 1
    return vis, occ
