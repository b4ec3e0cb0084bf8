"""Penn tags, dependency labels and closed word lists the caption reader keys on."""
from __future__ import annotations

NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
PLURAL_TAGS = frozenset({"NNS", "NNPS"})
PRONOUN_TAGS = frozenset({"PRP", "PRP$", "WP", "WP$"})
ADJECTIVE_TAGS = frozenset({"JJ", "JJR", "JJS"})
BE_FORMS = frozenset({"be", "is", "are", "was", "were", "been", "being", "am", "'s", "'re", "'m"})
PHRASE_SKIP_DEPS = frozenset({"det", "predet", "poss", "case", "punct", "cc", "prep", "quantmod"})
ATTRIBUTE_DEPS = frozenset({"amod", "compound", "nmod", "acomp", "conj", "advmod"})
NUMBER_DEPS = frozenset({"nummod", "quantmod"})  # 'a dozen donuts': 'dozen' is no noun of its own
COUNT_DEPS = NUMBER_DEPS | {"det", "predet"}
SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
MODIFIER_DEPS = frozenset({"amod", "compound", "nmod", "nummod", "quantmod", "advmod", "npadvmod", "conj",
                           "cc", "punct", "det", "predet", "poss", "case", "hmod", "hyph"})
HAVE_FORMS = frozenset({"have", "has", "had", "having"})
ARTICLES = frozenset({"a", "an", "the"})
LIST_JOINS = frozenset({"and", ",", "or", "&"})
LIST_FILLER_TAGS = frozenset({"DT", "CD", "PDT", "JJ", "JJR", "JJS", "RB", "HYPH"})  # 'and a dark', ', two'
VERB_OWN_DEPS = frozenset({"nsubj", "nsubjpass", "dobj", "aux", "auxpass", "neg", "xcomp", "ccomp", "dative",
                           "prt", "attr", "acomp"})
PERSON_PRONOUNS = frozenset({"his", "her", "their", "my", "your", "our"})
THING_PRONOUNS = frozenset({"its"})
MAX_MULTIWORD = 4
