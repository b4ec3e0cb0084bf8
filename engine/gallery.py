"""``ovlabel preview RUN --out DIR``: a PNG overlay per image and a static HTML gallery of them.

``DIR/index.html`` is one self-contained page (inline CSS and a few lines of inline JS, no external
assets): a card per image with its overlay (``DIR/overlays/NNNNN.png``, :mod:`ovlabel.engine.overlay`),
its scene -> object -> part tree with scores, and its captions with the words segments were matched to
highlighted in their class colour. Filters by class and level hide the cards that have no such
segment; the filter is kept in the URL (``index.html#class=dog&level=part``), so a view can be linked.
"""
from __future__ import annotations

import html
import logging
import posixpath
from typing import Any, Iterator, Mapping, Optional, Sequence

from ovlabel.engine.errors import LabelsError
from ovlabel.engine.labelset import ClassIndex, load_row_image, open_run, segment_class
from ovlabel.engine.overlay import hex_colour, render_overlay

log = logging.getLogger(__name__)
INDEX = "index.html"
OVERLAYS = "overlays"
PREVIEW_COLUMNS = ["image_id", "image_uri", "width", "height", "captions", "segments"]
_esc = html.escape


def _chip(name: str, classes: ClassIndex) -> str:
    return f'<i class="chip" style="background:{hex_colour(classes.id_of(name))}"></i>'


def _node(segment: Mapping[str, Any], classes: ClassIndex) -> str:
    name = segment_class(segment)
    word = f' <span class="word">&ldquo;{_esc(segment["label"])}&rdquo;</span>' if segment["label"] != name else ""
    return (f'<li data-level="{_esc(segment["level"])}" data-class="{_esc(name)}">{_chip(name, classes)}'
            f'<b>{_esc(name)}</b>{word} <span class="lv">{_esc(segment["level"])}</span> '
            f'<span class="score">{float(segment["score"]):.2f}</span> <span class="src">{_esc(segment["source"])}'
            f'</span>')


def tree_html(segments: Sequence[Mapping[str, Any]], classes: ClassIndex) -> str:
    """The scene -> object -> part tree as nested lists (parts under their objects)."""
    children: dict[Optional[int], list[Mapping[str, Any]]] = {}
    for s in segments:
        children.setdefault(s["parent_id"], []).append(s)

    def branch(parent: Optional[int]) -> Iterator[str]:
        for s in children.get(parent, []):
            below = "".join(branch(int(s["segment_id"])))
            yield _node(s, classes) + (f"<ul>{below}</ul>" if below else "") + "</li>"

    return f'<ul class="tree">{"".join(branch(None))}</ul>'


def caption_html(text: str, segments: Sequence[Mapping[str, Any]], index: int, classes: ClassIndex) -> str:
    """Caption ``index`` with the character spans of its matched segments marked (the first of overlaps wins)."""
    spans = sorted(((s["char_span"][0], s["char_span"][1], s) for s in segments
                    if s["caption_index"] == index and s["char_span"] is not None), key=lambda t: t[:2])
    out, at = [], 0
    for start, end, s in spans:
        if start < at or not 0 <= start < end <= len(text):
            continue
        name = segment_class(s)
        out.append(_esc(text[at:start]))
        out.append(f'<mark class="{_esc(s["level"])}" title="{_esc(s["level"])}: {_esc(name)}" '
                   f'style="border-color:{hex_colour(classes.id_of(name))}">{_esc(text[start:end])}</mark>')
        at = end
    out.append(_esc(text[at:]))
    return "".join(out)


def card_html(row: Mapping[str, Any], png: str, classes: ClassIndex) -> str:
    """One image's card: overlay, id, captions (matched words marked) and tree; data-tags drive the filters."""
    segments = list(row["segments"])
    tags = "|".join(sorted({f"{s['level']}:{segment_class(s)}" for s in segments}))
    captions = "".join(f"<li>{caption_html(c, segments, k, classes)}</li>" for k, c in enumerate(row["captions"] or []))
    return (f'<article class="card" data-tags="{_esc(tags)}"><img src="{_esc(png)}" alt="{_esc(row["image_id"])}" '
            f'loading="lazy"><h2>{_esc(row["image_id"])}</h2><ol class="captions">{captions}</ol>'
            f'{tree_html(segments, classes)}</article>')


_CSS = """body{font:14px system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222}
header{position:sticky;top:0;background:#222;color:#eee;padding:8px 16px;display:flex;gap:16px;align-items:center}
header h1{font-size:16px;margin:0}select{font-size:14px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px;padding:12px}
.card{background:#fff;border-radius:6px;padding:8px;box-shadow:0 1px 3px #0003}.card[hidden]{display:none}
.card img{width:100%;image-rendering:auto;border-radius:4px}.card h2{font-size:13px;margin:4px 0;color:#555}
.captions{margin:4px 0;padding-left:18px}mark{background:none;border-bottom:3px solid;padding:0 1px}
mark.scene{font-style:italic}.tree,.tree ul{list-style:none;padding-left:14px;margin:2px 0}.tree{padding-left:0}
.chip{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.lv,.src{color:#888;font-size:12px}.score{font-variant-numeric:tabular-nums}.word{color:#666}
li.hit>b{text-decoration:underline}"""

_JS = """
const cards = [...document.querySelectorAll('.card')], cls = document.getElementById('class'),
      lvl = document.getElementById('level'), shown = document.getElementById('shown');
const fits = (level, name) => (!cls.value || name === cls.value) && (!lvl.value || level === lvl.value);
function apply() {
  let n = 0;
  for (const card of cards) {
    const ok = card.dataset.tags.split('|').some(t => fits(t.slice(0, t.indexOf(':')), t.slice(t.indexOf(':') + 1)));
    card.hidden = !ok;
    n += ok ? 1 : 0;
    for (const li of card.querySelectorAll('li[data-class]'))
      li.classList.toggle('hit', !!cls.value && fits(li.dataset.level, li.dataset.class));
  }
  shown.textContent = n;
}
function remember() {
  const q = new URLSearchParams();
  if (cls.value) q.set('class', cls.value);
  if (lvl.value) q.set('level', lvl.value);
  location.hash = q.toString();
  apply();
}
const h = new URLSearchParams(location.hash.slice(1));
cls.value = h.get('class') || '';
lvl.value = h.get('level') || '';
cls.onchange = lvl.onchange = remember;
apply();
"""


def page_html(cards: Sequence[str], classes: Sequence[str], title: str) -> str:
    """The whole gallery page around ``cards``, with the class and level filters."""
    options = "".join(f'<option value="{_esc(c)}">{_esc(c)}</option>' for c in classes)
    levels = "".join(f'<option value="{lv}">{lv}</option>' for lv in ("scene", "object", "part"))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width"><style>{_CSS}</style></head><body><header>'
            f'<h1>{_esc(title)}</h1><label>class <select id="class"><option value="">all</option>{options}</select>'
            f'</label><label>level <select id="level"><option value="">all</option>{levels}</select></label>'
            f'<span><span id="shown">{len(cards)}</span> of {len(cards)} images</span></header>'
            f'<main>{"".join(cards)}</main><script>{_JS}</script></body></html>')


def write_preview(location: str, out: str, limit: Optional[int] = None) -> dict[str, Any]:
    """Overlays and the gallery of the first ``limit`` rows (all when None) of the run at ``location`` into the
    local folder ``out``; returns what was written."""
    import pathlib

    if limit is not None and limit < 1:
        raise LabelsError(f"--limit must be at least 1, got {limit}")
    run = open_run(location)
    classes = run.classes()
    rows = run.rows(PREVIEW_COLUMNS)[:limit]
    folder = pathlib.Path(out)
    try:
        (folder / OVERLAYS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabelsError(f"cannot make the preview folder {out!r}: {exc}; pick a writable --out") from None
    cards = []
    for k, row in enumerate(rows):
        png = posixpath.join(OVERLAYS, f"{k:05d}.png")
        render_overlay(load_row_image(row), row["segments"], classes).save(folder / png)
        cards.append(card_html(row, png, classes))
    used = sorted({segment_class(s) for row in rows for s in row["segments"]})
    (folder / INDEX).write_text(page_html(cards, used, f"ovlabel preview: {location}"), encoding="utf-8")
    log.info("wrote %d overlays and %s", len(cards), folder / INDEX)
    return {"images": len(cards), "index": str(folder / INDEX), "classes": len(used)}


__all__ = ["INDEX", "OVERLAYS", "caption_html", "card_html", "page_html", "tree_html", "write_preview"]
