"""benchmarks/heldout.py: the held-out sentences that intelligibility is reported on. They must be real text that
none of our own sets contains, split in two halves that never share a sentence, and the same on every call."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import heldout  # noqa: E402


def test_the_rule_keeps_plain_sentences_and_drops_code_acronyms_and_fragments():
    text = (
        "The for statement is used to iterate over the elements of a sequence. Call obj.method() to do it.\n"
        "Its value is given by the ASCII table of the character here. Short one.\n"
        "    An indented line is part of a code example and never kept, however long it is.\n"
        "\n"
        "A paragraph may wrap over\n"
        "two lines and is still one sentence here, with a decimal-\n"
        "point in it.\n"
        "This uses getAttribute to read a value from the given node. See e.g. the notes below for more.\n"
        "The for statement is used to iterate over the elements of a sequence.\n"
    )
    assert heldout.sentences_of(text) == [
        "The for statement is used to iterate over the elements of a sequence.",
        "A paragraph may wrap over two lines and is still one sentence here, with a decimal-point in it.",
    ]


def test_the_splits_are_disjoint_deterministic_and_large_enough_to_report():
    try:
        dev, test = heldout.held_out("dev"), heldout.held_out("test")
    except RuntimeError as e:  # a Python without pydoc_data
        pytest.skip(str(e))
    assert len(test) >= 150 and len(dev) >= 150
    assert not set(dev) & set(test)
    assert heldout.held_out("test", limit=10) == test[:10]
    assert heldout.describe(test[:10]) == heldout.describe(heldout.held_out("test", limit=10))
    assert all(heldout.keep(s) for s in dev + test)


def test_no_held_out_sentence_is_one_of_our_own():
    try:
        held = set(heldout.held_out("dev")) | set(heldout.held_out("test"))
    except RuntimeError as e:
        pytest.skip(str(e))
    ours = set()
    for path in (ROOT / "benchmarks" / "data").glob("*.txt"):
        ours |= {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert ours and not held & ours


def test_an_unknown_split_is_refused():
    with pytest.raises(ValueError, match="dev, test"):
        heldout.held_out("train", text="")
