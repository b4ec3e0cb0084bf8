"""Precision and recall of one run's labels at stricter score thresholds, without rerunning it.

    python scripts/sweep_thresholds.py --labels runs/val --gt VAL/instances.json \\
        --caption 0.5,0.6,0.7 --vocabulary 0.95,0.99 --lexicon 0.7,0.8 [--json out.json]

Run the pipeline once with thresholds at or below the lowest to try (``matching.probability_threshold``,
``matching.vocabulary_threshold``, ``matching.lexicon_part_threshold``), then this drops, for every
combination, the segments whose ``score`` (the matcher's softmax probability) is below the threshold of
their ``source`` ('caption', 'vocabulary', 'lexicon'), and the segments under a dropped one, and scores
the rest with ``ovlabel eval``'s code. The matcher assigns the most probable masks first, so a stricter
run keeps nearly the same segments; what can differ is only what the dropped segments had blocked
(masks 'still free' for the vocabulary and the lexicon, overlaps). Confirm the chosen thresholds with a
real run. Meant for choosing thresholds on validation scenes, never on the evaluation ones.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from typing import Any, Mapping, Sequence

from ovlabel.engine.evaluation import (eval_vocabulary, evaluate_rows, parse_ground_truth, read_coco,
                                       read_label_rows)

log = logging.getLogger("sweep_thresholds")
SOURCES = ("caption", "vocabulary", "lexicon")


def kept_segments(segments: Sequence[Mapping[str, Any]], thresholds: Mapping[str, float]) -> list[Mapping[str, Any]]:
    """The segments scoring at least their source's threshold (roots always), minus those under a dropped one."""
    by_id = {s["segment_id"]: s for s in segments}

    def passes(s: Mapping[str, Any]) -> bool:
        if s.get("parent_id") is None:
            return True
        if float(s["score"]) < thresholds.get(str(s.get("source")), 0.0):
            return False
        parent = by_id.get(s["parent_id"])
        return parent is None or passes(parent)

    return [s for s in segments if passes(s)]


def sweep(rows: Sequence[Mapping[str, Any]], coco: Mapping[str, Any], grid: Mapping[str, Sequence[float]],
          vocabulary: Any) -> list[dict[str, Any]]:
    """One summary per combination of ``grid``'s thresholds (source -> values)."""
    images = parse_ground_truth(coco)
    names = list(grid)
    out = []
    for values in itertools.product(*(grid[n] for n in names)):
        thresholds = dict(zip(names, values))
        kept = [{**r, "segments": kept_segments(r["segments"], thresholds)} for r in rows]
        report = evaluate_rows(kept, images, vocabulary=vocabulary, coco=coco)
        levels = report["levels"]
        out.append({"thresholds": thresholds,
                    **{f"{lv}_{k}": levels[lv][k] for lv in ("object", "part") for k in ("precision", "recall")},
                    "scene": report["scene"]["accuracy"],
                    "ap": {lv: (report["mask_ap"] or {}).get(lv, {}).get("AP") for lv in ("object", "part")}})
    return out


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", required=True)
    p.add_argument("--gt", required=True)
    for source in SOURCES:
        p.add_argument(f"--{source}", type=_floats, default=[0.0], help=f"thresholds for '{source}' segments")
    p.add_argument("--json", dest="json_out")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    coco = read_coco(args.gt)
    rows = read_label_rows(args.labels)
    results = sweep(rows, coco, {s: getattr(args, s) for s in SOURCES}, eval_vocabulary(None, args.labels))
    for r in results:
        t = " ".join(f"{k}={v:g}" for k, v in r["thresholds"].items())
        sys.stdout.write(f"{t}  objects P {r['object_precision']:.3f} R {r['object_recall']:.3f}  "
                         f"parts P {r['part_precision'] or 0:.3f} R {r['part_recall']:.3f}  scenes {r['scene']:.3f}\n")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
