"""Selection criteria shared by ``filter`` and ``prune``, decided from manifest records only."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
import fnmatch
from typing import Any


@dataclass(frozen=True)
class Criteria:
    """What a sample must satisfy to be kept; None / empty means no constraint."""

    max_switches: int | None = None
    max_frame_switches: int | None = None
    max_session_switches: int | None = None
    min_visibility: float | None = None
    min_matched: int | None = None
    sessions: tuple[str, ...] = ()
    exclude_sessions: tuple[str, ...] = ()
    since_ns: int | None = None
    until_ns: int | None = None
    require_gt: bool = False
    embed_dim: int | None = None

    def is_empty(self) -> bool:
        """True when no criterion is set (everything is kept)."""
        return all(getattr(self, f.name) in (None, (), False) for f in fields(self))


def reject_reason(rec: dict[str, Any], c: Criteria, session_total: int) -> str | None:
    """Why ``rec`` fails the criteria (first reason), or None when it is kept."""
    session = str(rec.get('session', ''))
    if c.sessions and not any(fnmatch.fnmatchcase(session, p) for p in c.sessions):
        return 'session not selected'
    if any(fnmatch.fnmatchcase(session, p) for p in c.exclude_sessions):
        return 'session excluded'
    if c.max_switches is not None and rec.get('est_id_switches', 0) > c.max_switches:
        return 'est_id_switches'
    if (c.max_frame_switches is not None
            and rec.get('est_id_switches_frame', 0) > c.max_frame_switches):
        return 'est_id_switches_frame'
    if c.max_session_switches is not None and session_total > c.max_session_switches:
        return 'session est_id_switches'
    if c.min_visibility is not None:
        vis = rec.get('mean_visibility')
        if vis is None or vis < c.min_visibility:
            return 'mean_visibility'
    if c.min_matched is not None and rec.get('matched_pairs', 0) < c.min_matched:
        return 'matched_pairs'
    stamp = int(rec.get('stamp_ns', 0))
    if c.since_ns is not None and stamp < c.since_ns:
        return 'before since'
    if c.until_ns is not None and stamp > c.until_ns:
        return 'after until'
    if c.require_gt and not rec.get('has_gt', False):
        return 'no ground truth'
    if c.embed_dim is not None and rec.get('embed_dim') != c.embed_dim:
        return 'embed_dim'
    return None


def split(records: list[dict[str, Any]], c: Criteria
          ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """(kept records, [(rejected record, reason)]) in manifest order."""
    from assoc_logger_ros.dataset.store import session_switches
    totals = session_switches(records)
    keep, drop = [], []
    for rec in records:
        reason = reject_reason(rec, c, totals.get(str(rec.get('session', '')), 0))
        if reason is None:
            keep.append(rec)
        else:
            drop.append((rec, reason))
    return keep, drop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The criteria flags, identical for filter and prune."""
    g = parser.add_argument_group('criteria (a sample must pass all that are given)')
    g.add_argument('--max-switches', type=int, help='largest est_id_switches (cumulative in '
                   'its session, as the seed stored it)')
    g.add_argument('--max-frame-switches', type=int,
                   help='largest est_id_switches_frame (switches in that frame)')
    g.add_argument('--max-session-switches', type=int,
                   help='drop whole sessions with more estimated switches than this')
    g.add_argument('--min-visibility', type=float, help='smallest mean_visibility')
    g.add_argument('--min-matched', type=int, help='fewest matched_pairs')
    g.add_argument('--session', action='append', default=[], metavar='PATTERN',
                   help='keep only these sessions (glob; repeatable)')
    g.add_argument('--exclude-session', action='append', default=[], metavar='PATTERN',
                   help='drop these sessions (glob; repeatable)')
    g.add_argument('--since-ns', type=int, help='earliest stamp_ns')
    g.add_argument('--until-ns', type=int, help='latest stamp_ns')
    g.add_argument('--require-gt', action='store_true', help='only samples with det_gt_ids')
    g.add_argument('--embed-dim', type=int, help='only samples stored with this embedding width')


def from_args(args: argparse.Namespace) -> Criteria:
    """Criteria from parsed flags (see :func:`add_arguments`)."""
    return Criteria(
        max_switches=args.max_switches, max_frame_switches=args.max_frame_switches,
        max_session_switches=args.max_session_switches, min_visibility=args.min_visibility,
        min_matched=args.min_matched, sessions=tuple(args.session),
        exclude_sessions=tuple(args.exclude_session), since_ns=args.since_ns,
        until_ns=args.until_ns, require_gt=args.require_gt, embed_dim=args.embed_dim)
