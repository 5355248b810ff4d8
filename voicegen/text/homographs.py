"""Noun/verb homographs that espeak-ng reads the same way whatever the sentence ("record the record").

espeak picks one pronunciation per word (mostly the noun's) and only sometimes switches after "to". For the
words below we decide from the neighbouring words instead, with three rules that need no tagger:

* after a determiner or possessive ("the", "a", "my", "this", ...) the word is a noun or adjective;
* after a form of "be" ("is", "was", "is not", "are never", ...) it is an adjective or noun ("is subject to",
  "be present", "are close"), except "wound", the past participle of "wind";
* after "to", a modal ("will", "can", "should", ...), a negation ("don't", "not") or a subject pronoun
  ("I", "we", "they", ...) it is a verb;
* as the first word of a sentence or clause (after ``;``, ``:`` or a dash) followed by a determiner or an object pronoun it is an imperative verb
  ("Close the door.", "Use it.").

Anywhere else espeak's choice stands. Words whose reading depends on meaning rather than part of speech
(read, lead, live, bass, bow, row, minute) are left to espeak; so are inflected forms ("records", "used").
Pronunciations are espeak-style IPA with ``^`` ties, so they go through the same alphabet mapping as
espeak's own output.
"""

from __future__ import annotations

from collections.abc import Sequence

NOUN, VERB = 0, 1

HOMOGRAPHS: dict[str, tuple[str, str]] = {
    # word: (noun or adjective, verb)
    "alternate": ("ɔːltˈɜːnət", "ˈɔːltɚnˌe^ɪt"),
    "close": ("klˈo^ʊs", "klˈo^ʊz"),
    "conduct": ("kˈɑːndʌkt", "kəndˈʌkt"),
    "conflict": ("kˈɑːnflɪkt", "kənflˈɪkt"),
    "contract": ("kˈɑːntɹækt", "kəntɹˈækt"),
    "contrast": ("kˈɑːntɹæst", "kəntɹˈæst"),
    "convert": ("kˈɑːnvɜːt", "kənvˈɜːt"),
    "decrease": ("dˈiːkɹiːs", "dᵻkɹˈiːs"),
    "desert": ("dˈɛzɚt", "dᵻzˈɜːt"),
    "estimate": ("ˈɛstᵻmət", "ˈɛstᵻmˌe^ɪt"),
    "excuse": ("ɛkskjˈuːs", "ɛkskjˈuːz"),
    "export": ("ˈɛkspɔː^ɹt", "ɛkspˈɔː^ɹt"),
    "graduate": ("ɡɹˈæd^ʒuːət", "ɡɹˈæd^ʒuːˌe^ɪt"),
    "house": ("hˈa^ʊs", "hˈa^ʊz"),
    "import": ("ˈɪmpɔː^ɹt", "ɪmpˈɔː^ɹt"),
    "increase": ("ˈɪŋkɹiːs", "ɪŋkɹˈiːs"),
    "insult": ("ˈɪnsʌlt", "ɪnsˈʌlt"),
    "moderate": ("mˈɑːdɚɹət", "mˈɑːdɚɹˌe^ɪt"),
    "object": ("ˈɑːbd^ʒɛkt", "əbd^ʒˈɛkt"),
    "permit": ("pˈɜːmɪt", "pɚmˈɪt"),
    "present": ("pɹˈɛzənt", "pɹᵻzˈɛnt"),
    "produce": ("pɹˈo^ʊduːs", "pɹədˈuːs"),
    "progress": ("pɹˈɑːɡɹɛs", "pɹəɡɹˈɛs"),
    "project": ("pɹˈɑːd^ʒɛkt", "pɹəd^ʒˈɛkt"),
    "rebel": ("ɹˈɛbə^l", "ɹᵻbˈɛl"),
    "record": ("ɹˈɛkɚd", "ɹᵻkˈɔː^ɹd"),
    "refuse": ("ɹˈɛfjuːs", "ɹᵻfjˈuːz"),
    "separate": ("sˈɛpɹət", "sˈɛpɚɹˌe^ɪt"),
    "subject": ("sˈʌbd^ʒɛkt", "səbd^ʒˈɛkt"),
    "suspect": ("sˈʌspɛkt", "səspˈɛkt"),
    "tear": ("tˈɪ^ɹ", "tˈɛ^ɹ"),
    "use": ("jˈuːs", "jˈuːz"),
    "wind": ("wˈɪnd", "wˈa^ɪnd"),
    "wound": ("wˈuːnd", "wˈa^ʊnd"),  # the injury; the past of "wind"
}
"""Noun (or adjective) and verb readings of each homograph, espeak-style en-us IPA."""

DETERMINERS = frozenset(
    "the a an this that these those my your his her its our their no every each any some another "
    "one first last whose which what".split()
)
VERB_CUES = frozenset(
    "to will would can could should must may might shall please don't doesn't didn't won't wouldn't can't "
    "cannot couldn't shouldn't never not i we they you he she let's".split()
)
OBJECTS = frozenset("it them me us him her this that these those".split())
BE = frozenset("is are was were be been being am isn't aren't wasn't weren't".split())
PARTICIPLES = frozenset({"wound"})  # after "be", the verb's past participle ("the clock was wound")


def part_of_speech(words: Sequence[str], i: int, clause_start: bool = False) -> int | None:
    """NOUN, VERB or None (no rule applies) for ``words[i]`` from its neighbours. ``i == 0`` or
    ``clause_start`` (the word follows ``;``, ``:``, a dash or a sentence mark) counts as a sentence start."""
    before = words[i - 1].lower() if i > 0 and not clause_start else None
    after = words[i + 1].lower() if i + 1 < len(words) else None
    if before in DETERMINERS:
        return NOUN
    if words[i].lower() not in PARTICIPLES and (
            before in BE or before in ("not", "never") and i >= 2 and words[i - 2].lower() in BE):
        return NOUN
    if before in VERB_CUES:
        return VERB
    if before is None and after is not None and (after in DETERMINERS or after in OBJECTS):
        return VERB
    return None


def homograph_ipa(words: Sequence[str], i: int, clause_start: bool = False) -> str | None:
    """espeak-style IPA for ``words[i]`` if it is a homograph whose part of speech the context settles."""
    readings = HOMOGRAPHS.get(words[i].lower())
    if readings is None:
        return None
    pos = part_of_speech(words, i, clause_start)
    return None if pos is None else readings[pos]
