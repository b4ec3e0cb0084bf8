"""Caption understanding: scene, object and part nouns with their relations (COCO-style captions)."""
from __future__ import annotations

from typing import Optional

import pytest
import yaml

from ovlabel.engine import captions as captions_mod
from ovlabel.engine.captions import CaptionParser, RuleLemmas, load_spacy, parse_caption, parse_captions
from ovlabel.engine.shipped import CONFIG_DIR
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.records import CaptionParse, Noun
from ovlabel.engine.vocab import VOCAB_DIR, is_part_of, is_scene, load_vocab, parts_of


@pytest.fixture(scope="module")
def parser() -> CaptionParser:
    return CaptionParser()


def parse(parser: CaptionParser, text: str) -> CaptionParse:
    result = parser.parse(text)
    for noun in result.nouns:  # every noun's phrase is its span of the caption
        assert text[noun.char_span[0]:noun.char_span[1]] == noun.phrase
    return result


def lemmas(result: CaptionParse, level: Optional[str] = None) -> list[str]:
    return [n.lemma for n in result.nouns if level is None or n.level == level]


def noun(result: CaptionParse, lemma: str) -> Noun:
    found = [n for n in result.nouns if n.lemma == lemma]
    assert len(found) == 1, f"{lemma!r} in {result.nouns}"
    return found[0]


def whole_of(result: CaptionParse, part: Noun) -> Noun:
    assert part.level == "part" and part.parent is not None, part
    return result.nouns[part.parent]


def assert_part(result: CaptionParse, part: str, whole: str) -> Noun:
    found = noun(result, part)
    assert whole_of(result, found).lemma == whole
    return found


def assert_object(result: CaptionParse, lemma: str) -> Noun:
    found = noun(result, lemma)
    assert found.level == "object" and found.parent is None, found
    return found


# --- parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, part, whole", [
    ("The dog's tail is wagging.", "tail", "dog"),
    ("A girl's hand holding a donut.", "hand", "girl"),
    ("The door of the refrigerator is open.", "door", "refrigerator"),
    ("Someone lifted the lid of a toilet.", "lid", "toilet"),
    ("The wing of an airplane above the clouds.", "wing", "airplane"),
    ("A man has a frisbee in his hand.", "hand", "man"),
    ("A bear opening its mouth near a river.", "mouth", "bear"),
    ("A dog with a frisbee in its mouth.", "mouth", "dog"),
    ("A girl holding a puppy in her arms.", "arm", "girl"),
    ("A giraffe bending its long neck to eat leaves.", "neck", "giraffe"),
    ("A bike with white handles parked by a wall.", "handle", "bike"),
    ("An oven with the door open.", "door", "oven"),
    ("A woman with long hair holding an umbrella.", "hair", "woman"),
    ("A man riding a horse with a long mane.", "mane", "horse"),
    ("A boat with white sails on the water.", "sail", "boat"),
    ("A car door is open.", "door", "car"),
    ("A toilet seat left up in a small bathroom.", "seat", "toilet"),
    ("The tree's crown is green.", "crown", "tree"),
    ("The home's door is brown.", "door", "home"),
    ("A house with a red roof on a street.", "roof", "house"),
    ("A grey home with a brown roof on a street.", "roof", "home"),  # 'home' tagged as an adverb
    ("The car has black wheels.", "wheel", "car"),
    ("One of the cars has black wheels.", "wheel", "car"),
    ("One of the houses has yellow windows.", "window", "house"),  # 'has' parsed as an auxiliary
    ("Each of the giraffes has a long neck.", "neck", "giraffe"),
    ("A man who has long hair and a beard.", "beard", "man"),
])
def test_part_of_its_whole(parser: CaptionParser, text: str, part: str, whole: str) -> None:
    result = parse(parser, text)
    assert_part(result, part, whole)
    assert whole_of(result, noun(result, part)).level == "object"


@pytest.mark.parametrize("text, whole, parts", [
    ("A man with white legs and a black torso at the beach.", "man", ["leg", "torso"]),
    ("You can see the car's blue window and grey wheels under a night sky.", "car", ["window", "wheel"]),
    ("You can see the tree's brown trunk and green crown in a field.", "tree", ["trunk", "crown"]),
    ("You can see the boat's red hull and yellow sails on a beach.", "boat", ["hull", "sail"]),
    ("You can see the person's purple torso and head on a street.", "person", ["torso", "head"]),
    ("A boat with a hull and red sails on a sandy beach.", "boat", ["hull", "sail"]),
])
def test_listed_parts_share_their_whole(parser: CaptionParser, text: str, whole: str, parts: list[str]) -> None:
    result = parse(parser, text)
    assert lemmas(result, "part") == parts
    for part in parts:
        assert_part(result, part, whole)


def test_listed_parts_keep_their_own_colours(parser: CaptionParser) -> None:
    result = parse(parser, "You can see the tree's brown trunk and green crown in a field.")
    assert noun(result, "crown").attributes == ("green",)
    result = parse(parser, "You can see the boat's red hull and yellow sails on a beach.")
    assert noun(result, "hull").attributes == ("red",) and noun(result, "sail").attributes == ("yellow",)


def test_place_with_parts_is_an_object(parser: CaptionParser) -> None:
    result = parse(parser, "A barn with a red roof.")
    assert_object(result, "barn")
    assert_part(result, "roof", "barn")
    assert noun(parse(parser, "Inside the barn."), "barn").level == "scene"


def test_possessive_part_phrase_and_span(parser: CaptionParser) -> None:
    text = "The dog's tail is wagging."
    tail = assert_part(parse(parser, text), "tail", "dog")
    assert tail.phrase == "tail" and tail.char_span == (10, 14)


def test_compound_part_keeps_head_lemma_and_its_own_phrase(parser: CaptionParser) -> None:
    result = parse(parser, "A car door is open.")
    assert lemmas(result) == ["car", "door"]
    assert noun(result, "door").phrase == "door" and noun(result, "car").phrase == "car"


def test_with_part_keeps_attributes_and_plural(parser: CaptionParser) -> None:
    handle = assert_part(parse(parser, "A bike with white handles parked by a wall."), "handle", "bike")
    assert handle.plural and handle.attributes == ("white",) and handle.phrase == "white handles"


def test_nested_parts(parser: CaptionParser) -> None:
    result = parse(parser, "The handle of the door of the refrigerator is silver.")
    assert_part(result, "handle", "door")
    assert_part(result, "door", "refrigerator")
    assert_object(result, "refrigerator")


def test_pronoun_skips_nearer_noun_without_that_part(parser: CaptionParser) -> None:
    result = parse(parser, "A lady with dark brown hair has a knife in her hand.")
    assert_part(result, "hand", "lady")
    assert_part(result, "hair", "lady")
    assert_object(result, "knife")


@pytest.mark.parametrize("text, lemma", [
    ("A man with a frisbee in a park.", "frisbee"),
    ("A man sitting on a bench with his dog.", "dog"),
    ("A woman's purse on a kitchen table.", "purse"),
    ("A kitchen with white cabinets and a stove.", "cabinet"),
    ("The lid of the box is next to a cup.", "cup"),
    ("A girl with long hair and a dog.", "dog"),
    ("A man has a frisbee in his hand.", "frisbee"),
    ("A kitchen has white cabinets and a black stove.", "cabinet"),
    ("The man's shirt and tie are blue.", "tie"),
])
def test_not_a_part(parser: CaptionParser, text: str, lemma: str) -> None:
    assert_object(parse(parser, text), lemma)


def test_part_noun_without_a_whole_is_an_object(parser: CaptionParser) -> None:
    result = parse(parser, "A hand holding a slice of pizza.")
    assert_object(result, "hand")
    assert_object(result, "pizza")


# --- spatial, quantity and framing phrases ------------------------------------------------------


@pytest.mark.parametrize("text, kept, dropped", [
    ("A man standing in front of a building.", ["man", "building"], "front"),
    ("A cat sitting on top of a car.", ["cat", "car"], "top"),
    ("A truck parked on the side of the road.", ["truck", "road"], "side"),
    ("A mess of items on a desk.", ["item", "desk"], "mess"),
    ("A picture of a cat on a bed.", ["cat", "bed"], "picture"),
    ("A photo of a bus parked by a curb.", ["bus", "curb"], "photo"),
    ("A view of a giraffe from a car window.", ["giraffe", "car", "window"], "view"),
    ("A close up of a hot dog with mustard.", ["hot dog", "mustard"], "close up"),
    ("A herd of elephants walking near the water.", ["elephant", "water"], "herd"),
    ("A bunch of bananas in the middle of a table.", ["banana", "table"], "bunch"),
    ("A lot of cars in the background of the image.", ["car"], "lot"),
    ("A slice of pizza sitting on a plate.", ["pizza", "plate"], "slice"),
])
def test_spatial_quantity_and_framing_words_are_dropped(parser: CaptionParser, text: str, kept: list[str],
                                                        dropped: str) -> None:
    result = parse(parser, text)
    assert [n for n in lemmas(result) if n in kept] == kept
    assert dropped not in lemmas(result)


def test_side_of_the_road(parser: CaptionParser) -> None:
    result = parse(parser, "the side of the road")
    assert lemmas(result) == ["road"]
    assert_object(result, "road")


@pytest.mark.parametrize("text, lemma, count", [
    ("A couple of pies on a table.", "pie", 2),
    ("A pair of skis leaning against a wall.", "ski", 2),
    ("Two pairs of skis stuck in the snow.", "ski", 4),
    ("A group of people standing on a beach.", "people", None),
])
def test_quantity_phrases_give_their_count(parser: CaptionParser, text: str, lemma: str,
                                           count: Optional[int]) -> None:
    result = parse(parser, text)
    found = assert_object(result, lemma)
    assert found.count == count and found.plural
    assert not {"couple", "pair", "group"} & set(lemmas(result))


@pytest.mark.parametrize("text, expected", [
    ("Something is on the table at night.", ["table"]),
    ("It is a sunny day at the beach.", ["beach"]),
    ("A couple sitting on a bench.", ["bench"]),
    ("They are standing at the edge of a lake in the distance.", ["lake"]),
    ("Some kind of animal walking in the area.", ["animal"]),
])
def test_stop_nouns_and_pronouns_are_never_emitted(parser: CaptionParser, text: str, expected: list[str]) -> None:
    assert lemmas(parse(parser, text)) == expected


# --- scenes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, scene", [
    ("A woman in a living room holding a cell phone.", "living room"),
    ("Three people at a skate park.", "skate park"),
    ("Two zebras grazing in a field.", "field"),
    ("A small bathroom with a white sink.", "bathroom"),
    ("A bus driving down a busy street.", "street"),
    ("A man cutting vegetables in his kitchen.", "kitchen"),
    ("A surfer riding a wave near the beach.", "beach"),
    ("A train pulling into a train station.", "train station"),
])
def test_place_nouns_are_scenes(parser: CaptionParser, text: str, scene: str) -> None:
    found = noun(parse(parser, text), scene)
    assert found.level == "scene" and found.parent is None


@pytest.mark.parametrize("text, lemma", [
    ("A bus driving down a busy street.", "bus"),
    ("A train pulling into a train station.", "train"),
    ("A boat floating on the ocean.", "boat"),
    ("A car parked in a parking lot.", "car"),
    ("Two houses on a street.", "house"),
    ("A woman in a living room holding a cell phone.", "cell phone"),
])
def test_vehicles_and_things_stay_objects(parser: CaptionParser, text: str, lemma: str) -> None:
    assert_object(parse(parser, text), lemma)


# --- multiword names, lemmas, counts and attributes -----------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("A yellow fire hydrant next to a stop sign.", ["fire hydrant", "stop sign"]),
    ("A brown teddy bear sitting under a traffic light.", ["teddy bear", "traffic light"]),
    ("A man holding a tennis racket on a tennis court.", ["man", "tennis racket", "tennis court"]),
    ("A boy swinging a baseball bat at a hot dog.", ["boy", "baseball bat", "hot dog"]),
    ("A microwave oven above the stove in a kitchen.", ["microwave oven", "stove", "kitchen"]),
])
def test_multiword_names_are_kept_whole(parser: CaptionParser, text: str, expected: list[str]) -> None:
    assert lemmas(parse(parser, text)) == expected


def test_teddy_bear_is_not_a_bear(parser: CaptionParser) -> None:
    result = parse(parser, "A brown teddy bear sitting under a traffic light.")
    bear = noun(result, "teddy bear")
    assert "bear" not in lemmas(result) and bear.phrase == "brown teddy bear" and bear.attributes == ("brown",)


def test_plurals_are_lemmatised(parser: CaptionParser) -> None:
    result = parse(parser, "Two hot dogs and some knives next to three glasses on the shelves.")
    assert lemmas(result) == ["hot dog", "knife", "glass", "shelf"]
    assert all(n.plural for n in result.nouns)
    assert [n.count for n in result.nouns] == [2, None, 3, None]


@pytest.mark.parametrize("text, lemma, count, plural", [
    ("Two dogs playing in the snow.", "dog", 2, True),
    ("3 people sitting at a table.", "people", 3, True),
    ("One man riding a skateboard.", "man", 1, False),
    ("A dozen donuts in a box.", "donut", 12, True),
    ("Several elephants at a watering hole.", "elephant", None, True),
    ("Many birds sitting on a wire.", "bird", None, True),
    ("A dog running on the beach.", "dog", None, False),
])
def test_counts(parser: CaptionParser, text: str, lemma: str, count: Optional[int], plural: bool) -> None:
    found = noun(parse(parser, text), lemma)
    assert (found.count, found.plural) == (count, plural)
    assert "dozen" not in lemmas(parse(parser, text))


def test_colour_and_size_attributes(parser: CaptionParser) -> None:
    result = parse(parser, "A black and white cat sleeping on a large red bed.")
    assert noun(result, "cat").attributes == ("black", "white")
    assert noun(result, "bed").attributes == ("large", "red")
    assert noun(result, "cat").phrase == "black and white cat"


@pytest.mark.parametrize("text, expected, lemma, colour", [
    ("There are two women and a grey puppy in a grassy field.", ["woman", "puppy", "field"], "puppy", "grey"),
    ("You can see the boat's orange hull and red sail at the beach.", ["boat", "hull", "sail", "beach"], "hull",
     "orange"),
])
def test_colour_words_tagged_as_nouns_are_attributes(parser: CaptionParser, text: str, expected: list[str],
                                                     lemma: str, colour: str) -> None:
    result = parse(parser, text)
    assert lemmas(result) == expected and noun(result, lemma).attributes == (colour,)


def test_colour_noun_on_its_own_is_an_object(parser: CaptionParser) -> None:
    assert_object(parse(parser, "An orange and a banana on the table."), "orange")


def test_predicative_colour_and_comparative_size(parser: CaptionParser) -> None:
    result = parse(parser, "The kitchen is yellow and has smaller white cabinets.")
    assert noun(result, "kitchen").attributes == ("yellow",)
    assert noun(result, "cabinet").attributes == ("small", "white")


def test_non_attribute_adjectives_are_ignored(parser: CaptionParser) -> None:
    assert noun(parse(parser, "A cute old dog in a dimly lit room."), "dog").attributes == ()
    assert noun(parse(parser, "A cute old dog in a dimly lit room."), "room").attributes == ()


def test_phrases_drop_determiners_and_possessors(parser: CaptionParser) -> None:
    result = parse(parser, "The big dog's red collar and all the small toys.")
    assert [n.phrase for n in result.nouns] == ["big dog", "red collar", "small toys"]


# --- robustness -----------------------------------------------------------------------------


def test_all_capitals_caption(parser: CaptionParser) -> None:
    text = "LARGE BLACK AND WHITE PANDA BEAR WALKING IN AN ENCLOSURE"
    result = parse(parser, text)
    bear = noun(result, "bear")
    assert bear.attributes == ("large", "black", "white")
    assert bear.phrase == "LARGE BLACK AND WHITE PANDA BEAR"
    assert noun(result, "enclosure").level == "scene"


def test_verb_misread_as_plural_noun(parser: CaptionParser) -> None:
    result = parse(parser, "A red bus passes by an old church.")
    bus = assert_object(result, "bus")
    assert bus.attributes == ("red",) and "pass" not in lemmas(result)


def test_gerund_misread_as_noun(parser: CaptionParser) -> None:
    result = parse(parser, "A couple of zebra standing in a grass field.")
    zebra = assert_object(result, "zebra")
    assert zebra.count == 2 and "standing" not in lemmas(result)


def test_empty_and_nounless_captions(parser: CaptionParser) -> None:
    assert parser.parse("").nouns == ()
    assert parser.parse("   ").nouns == ()
    assert parser.parse("It is very nice.").nouns == ()


def test_parse_many_matches_parse_and_keeps_order(parser: CaptionParser) -> None:
    texts = ["A car door is open.", "", "Two dogs playing in a field.", "A man has a frisbee in his hand."]
    assert parser.parse_many(texts) == [parser.parse(t) for t in texts]
    assert [p.text for p in parser.parse_many(texts)] == texts


def test_module_functions_share_one_parser() -> None:
    texts = ["A dog on a beach.", "Two cats."]
    assert parse_captions(texts) == [parse_caption(t) for t in texts]
    assert captions_mod.get_parser() is captions_mod.get_parser()


def test_missing_spacy_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not_a_spacy_model"):
        load_spacy("not_a_spacy_model")


def test_rule_lemmas_match_spacy_lemmatizer() -> None:
    nlp = load_spacy("en_core_web_sm")
    rule = RuleLemmas.from_pipeline(nlp)
    assert rule is not None
    text = ("Geese and mice near the knives, skis, buses, women, glasses, boxes, leaves and ponies; "
            "the larger and biggest sheep, happier children, teeth and feet.")
    checked = [(t.text, t.tag_, t.lemma_.lower()) for t in nlp(text) if t.pos_ in ("NOUN", "ADJ")]
    assert len(checked) > 15
    assert [rule(word, tag) for word, tag, _ in checked] == [lemma for _, _, lemma in checked]


# --- vocabulary -----------------------------------------------------------------------------


def test_vocab_files_live_in_the_config_dir() -> None:
    assert VOCAB_DIR == CONFIG_DIR / "vocab"
    for name in ("nouns.yaml", "scenes.yaml", "parts.yaml"):
        assert (VOCAB_DIR / name).is_file()


def test_scene_vocabulary_covers_places365() -> None:
    data = yaml.safe_load((VOCAB_DIR / "scenes.yaml").read_text())
    assert len(data["places365"]) == 365
    assert data["places365"]["living_room"] == "living room"
    assert data["places365"]["bus_interior"] == "bus interior"


@pytest.mark.parametrize("lemma", ["kitchen", "beach", "street", "field", "bathroom", "living room", "skate park",
                                   "airport terminal", "forest"])
def test_is_scene(lemma: str) -> None:
    assert is_scene(lemma)


@pytest.mark.parametrize("lemma", ["car", "bus", "train", "boat", "shower", "fountain", "dog", "road", "table",
                                   "house", "home"])
def test_objects_are_not_scenes(lemma: str) -> None:
    assert not is_scene(lemma)


def test_parts_of() -> None:
    person = parts_of("person")
    assert {"hand", "head", "hair", "leg"} <= person
    for alias in ("man", "woman", "boy", "girl", "child", "people"):
        assert parts_of(alias) == person or person <= parts_of(alias)
    assert "handle" in parts_of("bike") and "wheel" in parts_of("bicycle")
    assert {"lid", "seat", "tank"} <= parts_of("toilet")
    assert "door" in parts_of("refrigerator") and "door" in parts_of("car")
    assert {"tail", "paw", "ear"} <= parts_of("dog")
    assert "trunk" in parts_of("elephant") and "wing" in parts_of("airplane")
    assert {"trunk", "branch", "crown", "leaf"} <= parts_of("tree")
    assert {"roof", "door", "window"} <= parts_of("home") and parts_of("home") == parts_of("house")
    assert "hand" not in parts_of("frisbee")
    assert parts_of("no such thing") == frozenset()
    assert is_part_of("Hand", "Man") and not is_part_of("frisbee", "man")


def test_vocabulary_is_loaded_once() -> None:
    assert load_vocab() is load_vocab()
    assert {"photo", "side", "top", "front", "couple", "group", "pair"} <= load_vocab().stop
    assert load_vocab().quantity["pair"] == 2


def test_emoji_and_symbols_are_not_nouns() -> None:
    assert parse_caption("🐶🌊☀️🎉").nouns == ()
    lemmas = [n.lemma for n in parse_caption("A dog 🐶 on a beach 🌊.").nouns]
    assert "dog" in lemmas and all(any(ch.isalpha() for ch in lemma) for lemma in lemmas)
