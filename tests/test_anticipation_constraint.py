"""The shared vocabulary constraint: one language, compiled forms, validators that never guess."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoact.heads.anticipation.data import ActionVocab
from videoact.llm.constraint import ActionConstraint, ConstraintViolation

# "turn" is a prefix of "turn-on" and "pan" of "pan:dust", as in EPIC-55: the automaton must not stop early.
VOCAB = ActionVocab(name="toy", verbs=("take", "turn", "turn-on", "put"), nouns=("pan", "pan:dust", "tap", "lid"))


def test_parse_roundtrip_and_prefix_names() -> None:
    c = ActionConstraint(VOCAB, z=3)
    text = c.format([(2, 1), (1, 0), (0, 3)])
    assert text == "turn-on pan:dust, turn pan, take lid"
    assert c.parse(text) == [(2, 1), (1, 0), (0, 3)]
    assert c.parse(" " + text) == [(2, 1), (1, 0), (0, 3)]  # one leading space after "Future:"


@pytest.mark.parametrize("bad", [
    "take pan, put lid",  # too short: exactly Z actions
    "take pan, put lid, take tap, put pan",  # too long
    "take pan, grab lid, take tap",  # unknown verb
    "take pan, put lids, take tap",  # unknown noun
    "take pan,put lid, take tap",  # wrong separator
    "take pan, put lid, take tap.",  # trailing text
    "  take pan, put lid, take tap",  # two leading spaces
])
def test_parse_rejects_everything_outside_the_language(bad: str) -> None:
    with pytest.raises(ConstraintViolation):
        ActionConstraint(VOCAB, z=3).parse(bad)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=8))
def test_all_compiled_forms_accept_the_same_outputs(actions: list[tuple[int, int]]) -> None:
    c = ActionConstraint(VOCAB, z=len(actions))
    text = c.format(actions)
    assert c.parse(text) == actions
    assert re.fullmatch(c.regex(), text) and re.fullmatch(c.regex(), " " + text)
    obj = {"actions": [{"verb": VOCAB.verbs[v], "noun": VOCAB.nouns[n]} for v, n in actions]}
    assert c.parse_json(json.dumps(obj)) == actions
    assert c.is_final(c.advance(c.start(), text))


def test_json_schema_and_validator() -> None:
    c = ActionConstraint(VOCAB, z=2)
    schema = c.json_schema()
    items = schema["properties"]["actions"]
    assert (items["minItems"], items["maxItems"]) == (2, 2)
    assert items["items"]["properties"]["verb"]["enum"] == list(VOCAB.verbs)
    with pytest.raises(ConstraintViolation, match="not a vocabulary"):
        c.parse_json({"actions": [{"verb": "take", "noun": "pan"}, {"verb": "grab", "noun": "pan"}]})
    with pytest.raises(ConstraintViolation, match="2 items"):
        c.parse_json('{"actions": [{"verb": "take", "noun": "pan"}]}')
    with pytest.raises(ConstraintViolation, match="not JSON"):
        c.parse_json("take pan, put lid")


def test_gbnf_text() -> None:
    g = ActionConstraint(VOCAB, z=20).gbnf()
    assert g.splitlines()[0] == 'root ::= " "? action (", " action){19}'
    assert 'verb ::= "take" | "turn" | "turn-on" | "put"' in g
    assert 'noun ::= "pan" | "pan:dust" | "tap" | "lid"' in g


def test_names_that_would_break_the_language_are_refused() -> None:
    with pytest.raises(ValueError, match="without spaces"):
        ActionConstraint(ActionVocab(name="x", verbs=("pick up",), nouns=("pan",)), z=2)
