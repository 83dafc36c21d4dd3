"""Sample schema v1 as data: the one source for the writer, the validator and the README.

Every key of a ``sample_XXXXXXX.npz`` is a :class:`Field` below. Shapes are written with symbols:
``T`` tracks the association considered, ``D`` detections that reached the tracker, ``K`` the
embedding cap (``log_embed_dim``; embeddings are zero-padded or truncated to it). The seed's keys
keep their names, dtypes and meaning so training code written for the seed loads our samples
unchanged; the rest is context that makes the data filterable and checkable.
"""

from __future__ import annotations

from dataclasses import dataclass

from assoc_logger_ros.tracking.snapshot import (
    DET_FEATURE_COLUMNS,
    TRACK_FEATURE_COLUMNS,
    MatchStage,
    TrackState,
)

SCHEMA_VERSION = 1
SAMPLE_PREFIX = 'sample_'
SAMPLE_SUFFIX = '.npz'
SAMPLE_DIGITS = 7
MANIFEST_NAME = 'manifest.jsonl'
README_BEGIN = '<!-- BEGIN sample-schema -->'
README_END = '<!-- END sample-schema -->'
METADATA_REQUIRED = ('width', 'height', 'fps')

Dim = int | str


@dataclass(frozen=True)
class Field:
    """One npz key: dtype (numpy ``dtype.kind`` + size, ``U`` for text), shape and meaning."""

    key: str
    dtype: str
    shape: tuple[Dim, ...]
    description: str
    columns: tuple[str, ...] = ()
    seed: bool = False
    optional: bool = False

    @property
    def shape_text(self) -> str:
        """The shape as written in the docs, e.g. ``(T, 10)`` or ``()``."""
        if not self.shape:
            return '()'
        inner = ', '.join(str(d) for d in self.shape)
        return f'({inner},)' if len(self.shape) == 1 else f'({inner})'


def _enum_text(enum_cls: type) -> str:
    return ', '.join(f'{m.value}={m.name}' for m in enum_cls)


FIELDS: tuple[Field, ...] = (
    Field('schema_version', 'int64', (), f'Sample schema version, {SCHEMA_VERSION}.'),
    Field('frame_idx', 'int64', (1,), 'Index of the frame in its source (-1 when unknown); '
          'shape (1,) like `detection_count` in the seed.', seed=True),
    Field('stamp_ns', 'int64', (), 'Frame stamp (header stamp) in nanoseconds.'),
    Field('session_id', 'U', (), 'Session label; track ids are only comparable within one.'),
    Field('metadata', 'U', (), 'JSON object, sorted keys: at least width, height (px) and fps, '
          'plus source, embed_cap and any extra metadata of the collection.', seed=True),
    Field('track_ids', 'int64', ('T',), 'Id of every track the association considered.',
          seed=True),
    Field('track_states', 'int8', ('T',), f'Track state: {_enum_text(TrackState)}.'),
    Field('track_class_ids', 'int64', ('T',), 'Class of each track.'),
    Field('track_boxes', 'float64', ('T', 4), 'Kalman-predicted box of each track, px.',
          columns=('x1', 'y1', 'x2', 'y2')),
    Field('track_features', 'float32', ('T', 10), 'Normalised geometry/motion features.',
          columns=TRACK_FEATURE_COLUMNS, seed=True),
    Field('track_embeddings', 'float32', ('T', 'K'), 'Appearance memory embedding per track, '
          'zero-padded (or truncated) to K columns; zero rows when unavailable.', seed=True),
    Field('track_embed_dim', 'int64', (), 'Track embedding width before padding/truncation.'),
    Field('detection_count', 'int64', (1,), 'D, the number of detections.', seed=True),
    Field('det_boxes', 'float64', ('D', 4), 'Raw detection box, px.',
          columns=('x1', 'y1', 'x2', 'y2')),
    Field('det_scores', 'float32', ('D',), 'Detector confidence in [0, 1].'),
    Field('det_class_ids', 'int64', ('D',), 'Detector class id.'),
    Field('det_visibility', 'float32', ('D',), 'Estimated visible fraction in [0, 1] (mask or '
          'box-overlap estimate).'),
    Field('det_source_index', 'int64', ('D',), 'Row of the detection in its source message.'),
    Field('det_features', 'float32', ('D', 8), 'Normalised geometry + confidence/visibility.',
          columns=DET_FEATURE_COLUMNS, seed=True),
    Field('det_embeddings', 'float32', ('D', 'K'), 'Detection appearance descriptor, '
          'zero-padded (or truncated) to K columns; zero rows when unavailable.', seed=True),
    Field('det_embed_dim', 'int64', (), 'Detection embedding width before padding/truncation.'),
    Field('embed_truncated', 'bool', (), 'True when an embedding was wider than K and cut.'),
    Field('det_gt_ids', 'int64', ('D',), 'Ground-truth identity per detection (-1 unknown); '
          'present only when the source has ground truth.', optional=True),
    Field('cost_matrix', 'float32', ('T', 'D'), 'ByteTrack-style cost of each pair in the stage '
          'that considered it (1.0 where no stage did), before assignment.', seed=True),
    Field('mask_matrix', 'float32', ('T', 'D'), '1.0 where the pair was eligible for assignment '
          '(stage, class, threshold), else 0.0.', seed=True),
    Field('match_stage', 'int8', ('D',), f'Step that matched the detection: '
          f'{_enum_text(MatchStage)}.'),
    Field('assigned_track_ids', 'int64', ('D',), 'Track each detection was assigned to, -1 when '
          'unmatched (also when it started a new track).', seed=True),
    Field('new_track_ids', 'int64', ('D',), 'Id of the track a detection started, else -1.'),
    Field('est_id_switches', 'int64', (), 'Estimated ID switches so far in the session.'),
    Field('est_id_switches_frame', 'int64', (), 'Estimated ID switches in this frame.'),
    # per-pair confidence (tracking/confidence.py): about each detection's match, NaN where it
    # matched no existing track; computed by the writer, recomputed by `filter` when absent
    Field('pair_row_margin', 'float32', ('D',), "Runner-up cost in the matched track's row "
          "(cheapest other eligible detection; 1.0 when none) minus the pair's cost; small "
          'or negative: the track nearly took another detection. NaN when unmatched.',
          optional=True),
    Field('pair_col_margin', 'float32', ('D',), "Runner-up cost in the detection's column "
          "(cheapest other eligible track; 1.0 when none) minus the pair's cost. NaN when "
          'unmatched.', optional=True),
    Field('pair_track_age', 'float32', ('D',), 'Age of the matched track at the match, in '
          'nominal frames. NaN when unmatched.', optional=True),
    Field('pair_time_since_update', 'float32', ('D',), 'Nominal frames since the matched '
          "track's previous match (1 = matched in the previous frame). NaN when unmatched.",
          optional=True),
    Field('pair_iou', 'float32', ('D',), "Geometric IoU of the matched track's predicted box "
          'with the detection. NaN when unmatched.', optional=True),
    Field('pair_height_ratio', 'float32', ('D',), "Detection height over the matched track's "
          'predicted height. NaN when unmatched.', optional=True),
    Field('pair_rival_track_iou', 'float32', ('D',), 'Largest IoU of the detection with '
          "another track's predicted box (0: none). NaN when unmatched.", optional=True),
    Field('pair_rival_det_iou', 'float32', ('D',), "Largest IoU of the matched track's "
          'predicted box with another detection (0: none). NaN when unmatched.',
          optional=True),
    Field('pair_det_overlap', 'float32', ('D',), "Largest share of the detection's box "
          'covered by one other detection (0: alone), set for every detection.',
          optional=True),
    Field('label_weights', 'float32', ('D',), "Weight of each detection's label in [0, 1] "
          '(1 keep, 0 ignore its assigned_track_ids entry); absent means all ones. Set by '
          '`filter --label-preset` / `--label-scorer` / `--min-row-margin` ...', optional=True),
    Field('gt_boxes', 'float64', ('G', 4), 'Every ground-truth object of the frame, px, only '
          'to score labels (`labels` command); present with det_gt_ids when the source has '
          'ground-truth boxes.', columns=('x1', 'y1', 'x2', 'y2'), optional=True),
    Field('gt_ids', 'int64', ('G',), 'Identity of each gt_boxes row.', optional=True),
    # tracks started in the frame before this sample when that frame was no sample (a
    # session's first frame): O = how many; present only then (recording/origin.py)
    Field('origin_stamp_ns', 'int64', (), 'Stamp of the frame whose new tracks these are.',
          optional=True),
    Field('origin_frame_idx', 'int64', (), 'frame_idx of that frame.', optional=True),
    Field('origin_track_ids', 'int64', ('O',), 'Ids of the tracks it started.', optional=True),
    Field('origin_det_boxes', 'float64', ('O', 4), 'The detections that started them, px.',
          columns=('x1', 'y1', 'x2', 'y2'), optional=True),
    Field('origin_det_scores', 'float32', ('O',), 'Their detector scores.', optional=True),
    Field('origin_det_gt_ids', 'int64', ('O',), 'Their ground-truth identities (-1 unknown), '
          'when the source has ground truth.', optional=True),
    Field('assoc_prob', 'float32', ('T', 'D'), "Learned model's match probability per pair "
          '(0 outside stage 1); present only when the tracker ran with '
          '`transformer_assoc_enable`.', optional=True),
    Field('classical_cost_matrix', 'float32', ('T', 'D'), 'The cost without the learned model '
          '(`cost_matrix` then holds the blended cost the tracker assigned on); present only '
          'with `transformer_assoc_enable`.', optional=True),
)

FIELDS_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}
REQUIRED_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS if not f.optional)
SEED_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS if f.seed)


def sample_name(index: int) -> str:
    """File name of sample number ``index``: ``sample_0000042.npz``."""
    return f'{SAMPLE_PREFIX}{index:0{SAMPLE_DIGITS}d}{SAMPLE_SUFFIX}'


def sample_index(name: str) -> int | None:
    """Number in a sample file name (also for ``.tmp``/``.corrupt`` leftovers), else None."""
    if not name.startswith(SAMPLE_PREFIX):
        return None
    digits = name[len(SAMPLE_PREFIX):].split('.', 1)[0]
    return int(digits) if digits.isdigit() else None


def schema_markdown() -> str:
    """The README section documenting every key (between the sample-schema markers)."""
    lines = [
        f'Sample schema v{SCHEMA_VERSION} (generated from `assoc_logger_ros/recording/schema.py`;'
        ' do not edit by hand). Every `sample_XXXXXXX.npz` loads with',
        '`np.load(path, allow_pickle=False)`. T = tracks the association considered, '
        'D = detections, K = embedding cap',
        '(`log_embed_dim`). Shape `()` is a 0-d array (`int(sample[key])`); text keys are 0-d '
        'numpy unicode arrays',
        '(`str(sample[key])`). Keys marked *seed* are the seed schema, unchanged. '
        'Optional keys: `det_gt_ids`, `gt_boxes`, `gt_ids` (ground truth), the `pair_*` '
        'confidence keys (samples written before them lack them), `label_weights` and the '
        '`origin_*` keys (first sample of a session), `assoc_prob` and '
        '`classical_cost_matrix` (learned association model on).',
        '',
        '| key | dtype | shape | description |',
        '|---|---|---|---|',
    ]
    for f in FIELDS:
        dtype = 'str (numpy `<U`)' if f.dtype == 'U' else f.dtype
        desc = f.description
        if f.seed:
            desc = f'*seed*. {desc}'
        if f.columns:
            desc += ' Columns: ' + ', '.join(f'`{c}`' for c in f.columns) + '.'
        lines.append(f'| `{f.key}` | {dtype} | `{f.shape_text}` | {desc} |')
    lines += [
        '',
        'Consistency rules checked by `python -m assoc_logger_ros validate DIR`: T and D agree '
        'across keys;',
        '`detection_count[0] == D`; track ids are unique; every `assigned_track_ids` value is in '
        '`track_ids` or -1 and no track',
        'is assigned twice;',
        'a detection is assigned exactly when its `match_stage` is not 0 and the assigned pair '
        'has `mask_matrix == 1`;',
        '`mask_matrix` holds only 0 and 1; features, costs and embeddings are finite; '
        'visibility and scores lie in [0, 1];',
        'embedding columns past the original width are zero; `embed_truncated` agrees with the '
        'widths; `metadata` is',
        'a JSON object with width, height and fps; `pair_*` keys (but `pair_det_overlap`) are '
        'NaN exactly where a detection is unmatched;',
        '`label_weights` lie in [0, 1]; `gt_boxes` and `gt_ids` come together.',
    ]
    return '\n'.join(lines) + '\n'


def readme_section() -> str:
    """Markers plus :func:`schema_markdown`, exactly as it stands in README.md."""
    return f'{README_BEGIN}\n{schema_markdown()}{README_END}'


def replace_readme_section(text: str) -> str:
    """README text with the sample-schema section regenerated (markers appended if absent)."""
    start = text.find(README_BEGIN)
    end = text.find(README_END)
    if start < 0 or end < start:
        sep = '' if text.endswith('\n') or not text else '\n'
        return f'{text}{sep}\n## Sample schema\n\n{readme_section()}\n'
    return text[:start] + readme_section() + text[end + len(README_END):]


def update_readme(path: str) -> bool:
    """Regenerate the section in the README at ``path``; True when the file changed."""
    with open(path, encoding='utf-8') as fh:
        text = fh.read()
    new = replace_readme_section(text)
    if new != text:
        with open(path, 'w', encoding='utf-8') as fh:
            fh.write(new)
    return new != text


if __name__ == '__main__':  # python -m assoc_logger_ros.recording.schema README.md
    import sys
    for arg in sys.argv[1:] or ['README.md']:
        print(f'{arg}: {"updated" if update_readme(arg) else "up to date"}')
