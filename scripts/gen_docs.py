"""Generate the README parameters table from ``assoc_logger_ros.config.all_specs()``.

``python scripts/gen_docs.py`` rewrites the text between ``<!-- BEGIN params -->`` and
``<!-- END params -->`` in README.md; ``--check`` only reports (exit 1) when it is out of date.
Defaults live only in config.py, so the table is never edited by hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from assoc_logger_ros.config import ParamSpec, all_specs  # noqa: E402

BEGIN = '<!-- BEGIN params -->'
END = '<!-- END params -->'


def _cell(text: str) -> str:
    """Markdown-table-safe text."""
    return text.replace('|', '\\|').replace('\n', ' ')


def _default(spec: ParamSpec) -> str:
    value = spec.default
    if isinstance(value, bool):
        text = 'true' if value else 'false'
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = str(value)
    if spec.unit:
        text += f' {spec.unit}'
    return f'`{text}`'


def params_table() -> str:
    """The generated Markdown table (without the markers), one row per setting."""
    rows = [
        '| name | env var | type | default | range | description |',
        '| --- | --- | --- | --- | --- | --- |',
    ]
    for spec in all_specs():
        desc = spec.description
        if spec.runtime:
            desc += ' Changeable at runtime.'
        rows.append('| ' + ' | '.join([
            f'`{spec.name}`', f'`{spec.env_name}`', spec.type.__name__, _default(spec),
            _cell(spec.range_text()), _cell(desc)]) + ' |')
    return '\n'.join(rows) + '\n'


def splice(text: str, body: str) -> str:
    """``text`` with the part between the params markers replaced by ``body``."""
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END)
    return text[:start] + '\n' + body + text[end:]


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the README parameters table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='exit 1 if README.md is stale')
    parser.add_argument('--readme', type=Path, default=REPO_ROOT / 'README.md')
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding='utf-8')
    if BEGIN not in text or END not in text:
        print(f'ERROR: {args.readme} lacks the {BEGIN} / {END} markers', file=sys.stderr)
        return 1
    new = splice(text, params_table())
    if args.check:
        if new != text:
            print(f'{args.readme} parameters table is stale; run python scripts/gen_docs.py',
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.readme.write_text(new, encoding='utf-8')
        print(f'updated {args.readme}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
