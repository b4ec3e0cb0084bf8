"""Caption templates of the demo world: five varied English sentences per scene from ground-truth facts.

Captions only mention what is visible: objects by category (with synonyms, counts and plurals),
parts through possessives ("the house's red roof"), "of" ("the door of the house") and "with"
("a car with black wheels"), and the scene noun ("on a beach", "under a starry night sky").
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

N_CAPTIONS = 5

OBJECT_NOUNS: dict[str, tuple[str, ...]] = {
    "house": ("house", "home"), "car": ("car", "automobile"), "tree": ("tree",), "person": ("person", "man", "woman"),
    "boat": ("boat", "sailboat"), "sun": ("sun",), "moon": ("moon",), "dog": ("dog", "puppy"), "table": ("table",),
    "cup": ("cup", "mug"), "refrigerator": ("refrigerator", "fridge"),
}
PART_NOUNS: dict[str, tuple[str, ...]] = {p: (p,) for p in ("roof", "door", "window", "wheel", "trunk", "crown", "head",
                                                            "torso", "arm", "leg", "hull", "sail", "tail", "handle")}
_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "puppy": "puppies"}
SCENE_PHRASES: dict[str, tuple[str, ...]] = {
    "beach": ("on a beach", "on a sandy beach", "at the beach"),
    "street": ("on a street", "on a city street", "along a quiet street"),
    "field": ("in a field", "in a grassy field", "in an open field"),
    "kitchen": ("in a kitchen", "in a bright kitchen", "in a small kitchen"),
    "night sky": ("under a night sky", "under a starry night sky", "beneath the dark night sky"),
}
SCENE_NOUN_PHRASES: dict[str, tuple[str, ...]] = {
    "beach": ("a beach", "a sandy beach"), "street": ("a street", "a city street"),
    "field": ("a field", "a grassy field"), "kitchen": ("a kitchen", "a small kitchen"),
    "night sky": ("a night sky", "a starry night sky"),
}
_COUNTS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


@dataclass(frozen=True)
class PartFacts:
    """Visible instances of one part category on one object; ``colour`` None when never named."""

    category: str
    count: int
    colour: Optional[str]


@dataclass(frozen=True)
class ObjectFacts:
    """One visible object: category, its own noun ('woman'), colour word or None, visible parts."""

    category: str
    noun: str
    colour: Optional[str]
    parts: tuple[PartFacts, ...] = ()


def plural(noun: str) -> str:
    return _IRREGULAR.get(noun, noun + "s")


def surface_words(category: str) -> tuple[str, ...]:
    """Every singular and plural word captions may use for ``category`` (object or part)."""
    nouns = OBJECT_NOUNS.get(category) or PART_NOUNS[category]
    return tuple(dict.fromkeys([*nouns, *(plural(n) for n in nouns)]))


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _with_article(phrase: str) -> str:
    return f"{_article(phrase)} {phrase}"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[0].upper() + text[1:] + "."


def _noun(rng: np.random.Generator, obj: ObjectFacts) -> str:
    """Singular noun for one instance, sometimes a synonym."""
    if obj.category == "person":
        return obj.noun if rng.random() < 0.8 else "person"
    return _pick(rng, OBJECT_NOUNS[obj.category])


def _single(rng: np.random.Generator, obj: ObjectFacts, colour_p: float = 0.6) -> str:
    """'a red car', 'an automobile', 'a woman'."""
    colour = obj.colour if obj.colour and rng.random() < colour_p else None
    return _with_article(f"{colour} {_noun(rng, obj)}" if colour else _noun(rng, obj))


def _group(rng: np.random.Generator, objs: Sequence[ObjectFacts]) -> str:
    """'a red car' for one instance, 'three cars' / 'two women' / 'two people' for several."""
    if len(objs) == 1:
        return _single(rng, objs[0])
    if objs[0].category == "person":
        genders = {o.noun for o in objs}
        noun = genders.pop() if len(genders) == 1 and rng.random() < 0.8 else "person"
    else:
        noun = _noun(rng, objs[0])
    colours = {o.colour for o in objs}
    colour = colours.pop() if len(colours) == 1 and None not in colours and rng.random() < 0.5 else None
    words = plural(noun) if not colour else f"{colour} {plural(noun)}"
    return f"{_COUNTS.get(len(objs), 'several')} {words}"


def _groups(objects: Sequence[ObjectFacts]) -> dict[str, list[ObjectFacts]]:
    groups: dict[str, list[ObjectFacts]] = defaultdict(list)
    for obj in objects:
        groups[obj.category].append(obj)
    return dict(groups)


def _inventory(rng: np.random.Generator, groups: dict[str, list[ObjectFacts]]) -> tuple[str, int]:
    """A list of 1-3 object groups and the instance count of the first (for "there is/are" agreement)."""
    cats = list(groups)
    chosen = [cats[i] for i in sorted(rng.permutation(len(cats))[: int(rng.integers(1, min(3, len(cats)) + 1))])]
    return _join([_group(rng, groups[c]) for c in chosen]), len(groups[chosen[0]])


def _part_phrase(rng: np.random.Generator, part: PartFacts, counted: bool, colour: bool = True) -> str:
    """'a red roof', 'two yellow windows', 'black wheels' (no colour word when ``colour`` is False)."""
    named = part.colour if colour else None
    head = f"{named} {part.category}" if named else part.category
    if part.count == 1:
        return _with_article(head)
    words = f"{named} {plural(part.category)}" if named else plural(part.category)
    return f"{_COUNTS.get(part.count, 'several')} {words}" if counted else words


def _is(count: int) -> str:
    return "is" if count == 1 else "are"


# --- templates: each returns a sentence or None when the scene cannot support it ---------------------


def t_inventory(rng: np.random.Generator, scene: str, objects: Sequence[ObjectFacts]) -> Optional[str]:
    return _sentence(f"{_inventory(rng, _groups(objects))[0]} {_pick(rng, SCENE_PHRASES[scene])}")


def t_there(rng: np.random.Generator, scene: str, objects: Sequence[ObjectFacts]) -> Optional[str]:
    items, n = _inventory(rng, _groups(objects))
    return _sentence(f"there {_is(n)} {items} {_pick(rng, SCENE_PHRASES[scene])}")


def t_scene(rng: np.random.Generator, scene: str, objects: Sequence[ObjectFacts]) -> Optional[str]:
    return _sentence(f"{_pick(rng, SCENE_NOUN_PHRASES[scene])} with {_inventory(rng, _groups(objects))[0]}")


def _with_parts(rng: np.random.Generator, objects: Sequence[ObjectFacts]) -> Optional[ObjectFacts]:
    candidates = [o for o in objects if o.parts]
    return candidates[int(rng.integers(len(candidates)))] if candidates else None


def _some_parts(rng: np.random.Generator, obj: ObjectFacts, most: int = 2) -> list[PartFacts]:
    k = int(rng.integers(1, min(most, len(obj.parts)) + 1))
    return [obj.parts[i] for i in sorted(rng.permutation(len(obj.parts))[:k])]


def t_with(rng: np.random.Generator, scene: str, objects: Sequence[ObjectFacts]) -> Optional[str]:
    """'A blue car with two black wheels on a city street.'"""
    obj = _with_parts(rng, [o for o in objects if any(p.colour for p in o.parts)])
    if obj is None:
        return None
    named = ObjectFacts(obj.category, obj.noun, obj.colour, tuple(p for p in obj.parts if p.colour))
    chosen = _some_parts(rng, named)
    parts = []
    for p in chosen:
        named = p.colour != obj.colour or len(chosen) == 1
        parts.append(_part_phrase(rng, p, rng.random() < 0.5 or not named, named))
    where = _pick(rng, SCENE_PHRASES[scene]) if rng.random() < 0.6 else ""
    return _sentence(f"{_single(rng, obj)} with {_join(parts)} {where}")


def _unique_owner(rng: np.random.Generator, objects: Sequence[ObjectFacts]) -> tuple[Optional[ObjectFacts], int]:
    """An object with parts and how many objects share its category."""
    obj = _with_parts(rng, objects)
    return obj, (sum(o.category == obj.category for o in objects) if obj else 0)


def _one_of(rng: np.random.Generator, obj: ObjectFacts) -> Optional[str]:
    """'One of the cars has black wheels.' (definite reference would be ambiguous); needs a coloured part."""
    coloured = [p for p in obj.parts if p.colour]
    if not coloured:
        return None
    owner = "people" if obj.category == "person" else plural(_noun(rng, obj))
    part = coloured[int(rng.integers(len(coloured)))]
    return _sentence(f"one of the {owner} has {_part_phrase(rng, part, False)}")


def _part_name(part: PartFacts) -> str:
    return part.category if part.count == 1 else plural(part.category)


def _about_one_owner(rng: np.random.Generator, objects: Sequence[ObjectFacts],
                     sentence: Callable[[ObjectFacts], str]) -> Optional[str]:
    """``sentence`` about the object owning the parts; 'one of the ...' when its category is not unique."""
    obj, n = _unique_owner(rng, objects)
    if obj is None:
        return None
    return _one_of(rng, obj) if n > 1 else sentence(obj)


def t_possessive(rng: np.random.Generator, scene: str, objects: Sequence[ObjectFacts]) -> Optional[str]:
    """"The house's roof is red." / "You can see the woman's head and arms on a beach.\""""
    def sentence(obj: ObjectFacts) -> str:
        owner = f"the {_noun(rng, obj)}'s"
        parts = _some_parts(rng, obj)
        if len(parts) == 1 and parts[0].colour and rng.random() < 0.6:
            p = parts[0]
            return _sentence(f"{owner} {_part_name(p)} {_is(p.count)} {p.colour}")
        names = _join([(f"{p.colour} " if p.colour else "") + _part_name(p) for p in parts])
        return _sentence(f"you can see {owner} {names} {_pick(rng, SCENE_PHRASES[scene])}")

    return _about_one_owner(rng, objects, sentence)


def t_of(rng: np.random.Generator, scene: str, objects: Sequence[ObjectFacts]) -> Optional[str]:
    """"The door of the house is brown." / "The wheels of the car are clearly visible.\""""
    def sentence(obj: ObjectFacts) -> str:
        p = _some_parts(rng, obj, 1)[0]
        tail = p.colour if p.colour and rng.random() < 0.7 else f"clearly visible {_pick(rng, SCENE_PHRASES[scene])}"
        return _sentence(f"the {_part_name(p)} of the {_noun(rng, obj)} {_is(p.count)} {tail}")

    return _about_one_owner(rng, objects, sentence)


Template = Callable[[np.random.Generator, str, Sequence[ObjectFacts]], Optional[str]]
SCENE_TEMPLATES: tuple[Template, ...] = (t_inventory, t_there, t_scene)
PART_TEMPLATES: tuple[Template, ...] = (t_with, t_possessive, t_of)


def make_captions(rng: np.random.Generator, scene: str, objects: Sequence[ObjectFacts],
                  n: int = N_CAPTIONS) -> tuple[str, ...]:
    """``n`` captions: one scene-level sentence first, then a mix favouring part templates."""
    if not objects:
        return tuple(_sentence(f"{_pick(rng, SCENE_NOUN_PHRASES[scene])}") for _ in range(n))
    captions: list[str] = [str(_pick_template(rng, SCENE_TEMPLATES)(rng, scene, objects))]
    for _ in range(n * 8):
        if len(captions) == n:
            break
        pool = PART_TEMPLATES if rng.random() < 0.65 else SCENE_TEMPLATES
        text = _pick_template(rng, pool)(rng, scene, objects)
        if text and text not in captions:
            captions.append(text)
    while len(captions) < n:
        captions.append(str(t_inventory(rng, scene, objects)))
    return tuple(captions)


def _pick_template(rng: np.random.Generator, pool: Sequence[Template]) -> Template:
    return pool[int(rng.integers(len(pool)))]
