"""voicegen.text.gates: the normalizer skips a rule whose pattern needs a character the text lacks. Skipping must
never change the text: a rule whose requirements are met is applied exactly as before."""

import importlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from voicegen.text.gates import Requirement, apply_rules, requirements

N = importlib.import_module("voicegen.text.normalize")  # the module (`voicegen.text.normalize` is also a function)

RULE_LISTS = [N.WEB_RULES, N.ABBREV_RULES, N.DATE_RULES, N.MONEY_RULES, N.NUMBER_RULES, N.ROMAN_RULES,
              N.ACRONYM_RULES, N.SYMBOL_RULES]
# every character some rule names, letters of the abbreviations and units, digits (an Arabic-Indic one too: \d
# matches it), spaces and line breaks
ALPHABET = sorted(set("".join(p.pattern for rules in RULE_LISTS for p, _ in rules if p.pattern.isascii()))
                  | set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789٣ \n$€£¥₹₩%°×±§—…¢"))
WORDS = ["Mr.", "Dr.", "St.", "No. 5", "$4.20", "3rd", "1st-2nd", "10:30", "5pm", "2025-03-03", "3/4", "5-10 km",
         "50%", "A/B", "e.g.", "NASA", "x86_64", "C#", "#tag", "@user", "www.example.com", "1,000", "-3.5", "1990s",
         "USD 5", "Chapter IV", "and/or", "--", "…", "24/7", "911", "iOS", "v1.2.3", "+1 555-123-4567"]


def _every_rule(rules, text):
    for pattern, fn in rules:
        text = pattern.sub(fn, text)
    return text


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet=ALPHABET, max_size=40),
                 st.lists(st.sampled_from(WORDS + ["the", "cat", "on", "May", "in"]), max_size=8).map(" ".join)))
def test_skipping_rules_never_changes_the_text(text):
    """Catches a requirement that is not necessary (a character a match can do without): the skipped rule would
    have rewritten the text."""
    for rules in RULE_LISTS:
        assert apply_rules(rules, text) == _every_rule(rules, text), rules
        text = _every_rule(rules, text)


def test_requirements_name_only_what_every_match_needs():
    def req(pattern, flags=0):
        return requirements(re.compile(pattern, flags))

    assert req(r"\d+%") == (Requirement(frozenset(), True), Requirement(frozenset("%")))
    assert req(r"(?<=\d)\s?/") == (Requirement(frozenset(), True), Requirement(frozenset("/")))
    assert req(r"a|b") == (Requirement(frozenset("ab")),)
    assert req(r"x?y") == (Requirement(frozenset("y")),)
    assert req(r"(?!\d)x") == (Requirement(frozenset("x")),)  # a negative lookahead needs nothing
    assert req(r"[a-c]") == (Requirement(frozenset("abc")),)
    for nothing in (r"(?i)x", r"[^a]", r"\w+", r".", r"a*", r"x|", r"\b", r"[\x00-\uffff]"):
        assert req(nothing) == (), nothing
    assert req(r"x", re.IGNORECASE) == ()
    assert req(r"(?i:x)y") == (Requirement(frozenset("y")),)


def test_most_of_the_normalizers_rules_have_requirements():
    """Catches an analysis that silently finds nothing (Python's parse tree changed shape): every rule would then
    run, correct but twice as slow."""
    rules = [p for rules in RULE_LISTS for p, _ in rules]
    assert sum(1 for p in rules if requirements(p)) >= 0.9 * len(rules)
