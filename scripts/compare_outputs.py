"""Are two runs' outputs the same? Labels and error rows compared field by field, segment by segment.

    python scripts/compare_outputs.py OUT_A OUT_B [--ignore-prefix PATH_A=PATH_B]

Rows are matched by image_id (error rows by image_id, input row and manifest row index); what differs between
runs by design is ignored: the run id, and with ``--ignore-prefix`` a folder prefix of image paths
(two copies of the same inputs in different folders). Prints one line per kind and the first
differences; exits 1 when anything differs. Used to check that a redesign or an optimisation
leaves every row as it was (e.g. a demo run before and after).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from ovlabel.engine import layout

SHOWN = 10  # differences printed per kind


def rows_of(location: str, kind: str, prefix: Optional[tuple[str, str]] = None) -> dict[str, dict[str, Any]]:
    """``kind``'s rows at ``location``, keyed by image_id (or input row), run ids dropped, paths unprefixed."""
    fs, path = layout.open_location(location)
    out: dict[str, dict[str, Any]] = {}
    for row in layout.read_rows(fs, layout.find_shards(fs, path, kind)):
        row.pop("run_id", None)
        if isinstance(row.get("provenance"), dict):
            row["provenance"] = {k: v for k, v in row["provenance"].items() if k != "run_id"}
        if prefix is not None:
            row = json.loads(json.dumps(row).replace(prefix[1], prefix[0]))
        key = str(row["image_id"]) if kind == layout.LABELS else f"{row.get('image_id')} {row.get('input_row')}"
        if kind == layout.ERRORS and row.get("row_index") is not None:  # two identical manifest rows: by position
            key += f" @{row['row_index']}"
        n = sum(k == key or k.startswith(key + " #") for k in out)
        out[key if n == 0 else f"{key} #{n + 1}"] = row  # a row twice is a difference, not one row
    return out


def differences(a: dict[str, Any], b: dict[str, Any], where: str = "") -> list[str]:
    """Where two JSON-like values differ (dotted paths with list indices), in order."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where.lstrip('.')}: {a!r:.80} != {b!r:.80}"]


def compare(out_a: str, out_b: str, prefix: Optional[tuple[str, str]] = None) -> list[str]:
    """One summary line per kind, then the differences (at most ``SHOWN`` per kind)."""
    lines: list[str] = []
    for kind in layout.KINDS:
        a, b = rows_of(out_a, kind), rows_of(out_b, kind, prefix)
        found = [f"  {key}: only in {'A' if key in a else 'B'}" for key in sorted(set(a) ^ set(b))]
        found += [f"  {key} {d}" for key in sorted(set(a) & set(b)) for d in differences(a[key], b[key])]
        segments = sum(len(r.get("segments") or []) for r in a.values())
        verdict = "identical" if not found else f"{len(found)} differences"
        lines.append(f"{kind}: {len(a)} rows in A ({segments} segments), {len(b)} in B: {verdict}")
        lines += found[:SHOWN]
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_a")
    parser.add_argument("out_b")
    parser.add_argument("--ignore-prefix", help="PATH_A=PATH_B: image paths under these folders are the same")
    args = parser.parse_args(argv)
    prefix = tuple(args.ignore_prefix.split("=", 1)) if args.ignore_prefix else None
    lines = compare(args.out_a, args.out_b, prefix)  # type: ignore[arg-type]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if all(line.endswith("identical") for line in lines if not line.startswith(" ")) else 1


if __name__ == "__main__":
    sys.exit(main())
