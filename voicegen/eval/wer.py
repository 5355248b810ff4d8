"""Word error rate, with a text normalizer that makes a TTS prompt and an ASR transcript comparable.

The normalizer is deliberately independent of ``voicegen.text``: the judge must not share code (and so bugs)
with the frontend it judges. Both sides of a comparison go through the same steps:

1. Unicode cleanup: NFKC, curly apostrophes -> ``'``, every dash -> ``-``.
2. Numbers to words with num2words: money (``$4.20`` -> "four dollars twenty cents",
   ``$4.2 million`` -> "four point two million dollars"), percentages, times (``5:30 p.m.``, ``5.30pm`` ->
   "five thirty pm"), ordinals (``3rd`` -> "third"; a day beside a month is always one: ``March 3`` ->
   "march third"), decades (``1990s`` -> "nineteen nineties"), grouped
   and decimal numbers (years are plain cardinals), and units after a number (``5 km`` -> "five kilometers").
3. Lowercase, drop punctuation, split hyphenated words, and map spelling variants to one form
   ("ok" -> "okay", "mr" -> "mister", "&" -> "and", British -> American spelling of common words).
4. Inside spelled-out numbers, "and" is dropped and "a hundred" becomes "one hundred", so that
   "three thousand, four hundred and ninety-seven" equals "three thousand four hundred ninety seven".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from num2words import num2words

__all__ = ["normalize_for_wer", "word_error_rate", "corpus_word_error_rate", "edit_distance"]

# --- character cleanup -------------------------------------------------------------------------------------

_APOSTROPHES = dict.fromkeys(map(ord, "\u2018\u2019\u201b\u02bc\u2032`\u00b4"), "'")
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")

# --- numbers -----------------------------------------------------------------------------------------------

_CURRENCY = {"$": ("dollar", "dollars"), "£": ("pound", "pounds"), "€": ("euro", "euros"), "¥": ("yen", "yen")}
_SUBUNIT = {"$": ("cent", "cents"), "£": ("penny", "pence"), "€": ("cent", "cents")}
_SCALES = ("thousand", "million", "billion", "trillion")
# Units that are expanded only right after a number: symbol -> (singular, plural).
_UNITS = {
    "km": ("kilometer", "kilometers"), "kg": ("kilogram", "kilograms"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
    "m": ("meter", "meters"), "mi": ("mile", "miles"), "ft": ("foot", "feet"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"), "gb": ("gigabyte", "gigabytes"),
    "mb": ("megabyte", "megabytes"), "tb": ("terabyte", "terabytes"), "kb": ("kilobyte", "kilobytes"),
    "mph": ("miles per hour", "miles per hour"), "km/h": ("kilometers per hour", "kilometers per hour"),
    "kph": ("kilometers per hour", "kilometers per hour"), "hz": ("hertz", "hertz"),
    "khz": ("kilohertz", "kilohertz"), "mhz": ("megahertz", "megahertz"), "ghz": ("gigahertz", "gigahertz"),
    "kw": ("kilowatt", "kilowatts"), "kwh": ("kilowatt hour", "kilowatt hours"),
    "ms": ("millisecond", "milliseconds"),
    "hr": ("hour", "hours"), "hrs": ("hour", "hours"), "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"), "sec": ("second", "seconds"),
    "°c": ("degree celsius", "degrees celsius"), "°f": ("degree fahrenheit", "degrees fahrenheit"),
    "°": ("degree", "degrees"),
}
_DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred point".split()
) | frozenset(_SCALES)

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_CURRENCY_RE = re.compile(
    rf"(?P<neg>-)?(?P<cur>[$£€¥])\s?(?P<num>{_NUM})(?:\s?(?P<scale>{'|'.join(_SCALES)}|[kmb]n?)\b)?", re.I
)
_TIME_RE = re.compile(r"\b(?P<h>[0-2]?\d):(?P<m>[0-5]\d)(?::\d\d)?\b(?:\s*(?P<ampm>[ap])\.?\s?m\b\.?)?", re.I)
# '5.30 pm' and '645am' (as Whisper sometimes writes times) are times only when am/pm follows.
_DOT_TIME_RE = re.compile(r"\b(?P<h>1[0-2]|0?[1-9])\.?(?P<m>[0-5]\d)\s*(?P<ampm>[ap])\W{0,2}m\b\.?", re.I)
# '11.30' with no am/pm is a time only after a word that introduces one ('ends by 11.30'); else a decimal.
_PREP_TIME_RE = re.compile(
    r"\b(?P<pre>at|by|until|till|before|after|around|from|since|between)\s+"
    r"(?P<h>[01]?\d|2[0-3])\.(?P<m>[0-5]\d)\b(?![.,]?\d)",
    re.I,
)
_AMPM_RE = re.compile(r"\b(?P<h>1[0-2]|0?\d)\s*(?P<ampm>[ap])\.?\s?m\b\.?", re.I)
_PERCENT_RE = re.compile(rf"(?P<neg>(?<![\w-])-)?(?P<num>{_NUM})\s?(?:%|\bper\s?cent\b)", re.I)
_ORDINAL_RE = re.compile(r"\b(?P<num>\d+(?:,\d{3})*)(?:st|nd|rd|th)\b", re.I)
# 'May' and 'March' only capitalized: 'may 5 people come', 'they march 5 miles'.
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|(?-i:March|May)|apr(?:il)?|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
# A day beside a month is an ordinal however it is written: Whisper prints 'October 12' for 'October twelfth'.
_MONTH_DAY_RE = re.compile(rf"\b(?P<month>{_MONTH})\s+(?P<day>[0-3]?\d)(?:st|nd|rd|th)?\b(?![:.]\d)", re.I)
_DAY_MONTH_RE = re.compile(rf"\b(?P<day>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month>{_MONTH})(?!\w)", re.I)
_DECADE_RE = re.compile(r"(?:\b|')(?P<num>1[0-9]|20)?(?P<dec>\d0)'?s\b")
_UNIT_RE = re.compile(
    rf"(?P<num>{_NUM})\s?(?P<unit>{'|'.join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))})"
    r"(?![\w°])\.?",
    re.I,
)
_NUMBER_RE = re.compile(rf"(?P<neg>(?<![\w-])-)?(?P<num>{_NUM})")

# --- words -------------------------------------------------------------------------------------------------

_VARIANTS = {
    "ok": "okay", "mr": "mister", "mrs": "missus", "dr": "doctor", "prof": "professor",
    "vs": "versus", "alright": "all right",
    "etc": "et cetera", "jan": "january", "feb": "february", "apr": "april", "jun": "june", "jul": "july",
    "aug": "august", "sep": "september", "sept": "september", "oct": "october", "nov": "november",
    "dec": "december", "colour": "color", "colours": "colors", "favourite": "favorite",
    "favourites": "favorites", "centre": "center", "centres": "centers", "theatre": "theater",
    "metre": "meter", "metres": "meters", "kilometre": "kilometer", "kilometres": "kilometers",
    "litre": "liter", "litres": "liters", "grey": "gray", "neighbour": "neighbor",
    "neighbours": "neighbors", "honour": "honor", "organise": "organize", "realise": "realize",
    "realised": "realized", "travelled": "traveled", "travelling": "traveling", "labour": "labor",
    "flavour": "flavor", "behaviour": "behavior", "programme": "program", "cheque": "check",
}
_A_BEFORE_SCALE = re.compile(r"\ba (?=(?:hundred|thousand|million|billion|trillion)\b)")
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "=": " equals ", "@": " at "}
_SYMBOL_RE = re.compile("|".join(map(re.escape, _SYMBOLS)))
_PUNCT_RE = re.compile(r"[^\w' ]+")
_SPLIT_AMPM = re.compile(  # 'five p m' (from '5 p, m.') -> 'five pm'
    r"\b(\w*(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|teen|ty)) ([ap]) m\b"
)


def _cardinal(digits: str) -> str:
    """'3,497' -> 'three thousand four hundred ninety seven'; '4.20' -> 'four point two zero'."""
    whole, _, frac = digits.replace(",", "").partition(".")
    words = num2words(int(whole or "0"))
    if frac:
        words += " point " + " ".join(_DIGIT_WORDS[int(d)] for d in frac)
    return words


def _number(digits: str) -> str:
    """Like _cardinal, but digit strings with a leading zero ('007') are read digit by digit.

    Years get no special reading: '1937' -> 'one thousand nine hundred thirty seven' on both sides, because
    Whisper writes years (and '1280', '1,280') as digits, while a year rule would split '1280' from '1,280'.
    """
    if len(digits) > 1 and digits.startswith("0") and digits.isdigit():  # '007', '0123': digit by digit
        return " ".join(_DIGIT_WORDS[int(d)] for d in digits)
    return _cardinal(digits)


def _money(m: re.Match) -> str:
    cur, num, scale = m["cur"], m["num"].replace(",", ""), (m["scale"] or "").lower()
    one, many = _CURRENCY[cur]
    neg = "minus " if m["neg"] else ""
    if scale:
        scale = {"k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion"}.get(scale, scale)
        return f" {neg}{_cardinal(num)} {scale} {many} "
    whole, _, frac = num.partition(".")
    value = int(whole or "0")
    parts = []
    if value or not frac:
        parts.append(f"{_cardinal(whole or '0')} {one if value == 1 else many}")
    if frac:
        if len(frac) == 2 and cur in _SUBUNIT:
            cents = int(frac)
            if cents:
                sub_one, sub_many = _SUBUNIT[cur]
                parts.append(f"{num2words(cents)} {sub_one if cents == 1 else sub_many}")
        else:
            parts = [f"{_cardinal(num)} {many}"]
    return f" {neg}{' '.join(parts)} "


def _time(m: re.Match) -> str:
    hour, minute = int(m["h"]), int(m["m"])
    words = num2words(hour)
    if minute:
        words += (" oh " if minute < 10 else " ") + num2words(minute)
    ampm = m.groupdict().get("ampm")
    if ampm:
        words += f" {ampm.lower()}m"
    elif not minute:
        words += " o'clock"
    return f" {words} "


def _decade(m: re.Match) -> str:
    century, decade = m["num"], m["dec"]
    if decade == "00":
        words = num2words(int(century + decade), to="year") + "s" if century else "hundreds"
    else:
        tens = num2words(int(decade))
        words = (num2words(int(century)) + " " if century else "") + tens[:-1] + "ies"
    return f" {words} "


def _unit(m: re.Match) -> str:
    num = m["num"]
    one, many = _UNITS[m["unit"].lower()]
    return f" {_cardinal(num)} {one if num == '1' else many} "


def _expand_numbers(text: str) -> str:
    text = _CURRENCY_RE.sub(_money, text)
    text = _TIME_RE.sub(_time, text)
    text = _DOT_TIME_RE.sub(_time, text)
    text = _PREP_TIME_RE.sub(lambda m: f" {m['pre']}{_time(m)}", text)
    text = _AMPM_RE.sub(lambda m: f" {num2words(int(m['h']))} {m['ampm'].lower()}m ", text)
    text = _PERCENT_RE.sub(lambda m: f" {'minus ' if m['neg'] else ''}{_cardinal(m['num'])} percent ", text)
    text = _MONTH_DAY_RE.sub(lambda m: f" {m['month']} {num2words(int(m['day']), to='ordinal')} ", text)
    text = _DAY_MONTH_RE.sub(lambda m: f" {num2words(int(m['day']), to='ordinal')} of {m['month']} ", text)
    text = _ORDINAL_RE.sub(lambda m: f" {num2words(int(m['num'].replace(',', '')), to='ordinal')} ", text)
    text = _DECADE_RE.sub(_decade, text)
    text = _UNIT_RE.sub(_unit, text)
    text = _NUMBER_RE.sub(lambda m: f" {'minus ' if m['neg'] else ''}{_number(m['num'])} ", text)
    return text


def normalize_for_wer(text: str) -> str:
    """Canonical lowercase word string for WER: numbers spelled out, no punctuation, one spelling per word.

    >>> normalize_for_wer("Dr. Smith paid $4.20 at 5:30 p.m.")
    'doctor smith paid four dollars twenty cents at five thirty pm'
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).translate(_DASHES)
    text = re.sub(r"(?<=\d)-(?=\d)", " - ", text)  # ranges and phone numbers: '555-0199', '1990-2000'
    text = _expand_numbers(text)
    text = _SYMBOL_RE.sub(lambda m: _SYMBOLS[m[0]], text.lower())
    text = re.sub(r"\bper cent\b", "percent", text)
    text = re.sub(r"\bo\.k\.?", "okay", text)
    text = re.sub(r"\b([ap])\.m\.", r"\1m", text)
    text = text.replace("-", " ").replace("_", " ")
    text = _PUNCT_RE.sub(" ", text)
    words = []
    for word in text.split():
        word = word.strip("'")
        if word:
            words.extend(_VARIANTS.get(word, word).split())
    text = _A_BEFORE_SCALE.sub("one ", " ".join(words))
    text = _SPLIT_AMPM.sub(r"\1 \2m", text)
    words = text.split()
    # 'and' inside a spelled number ('four hundred and five', 'four dollars and twenty cents') is not a word
    # anyone will miss; drop it on both sides so that 'four hundred five' matches.
    kept = []
    for i, word in enumerate(words):
        if (word == "and" and 0 < i < len(words) - 1 and words[i + 1] in _NUMBER_WORDS
                and (words[i - 1] in _NUMBER_WORDS or words[i - 1] in _CURRENCY_UNIT_WORDS)):
            continue
        kept.append(word)
    return " ".join(kept)


_CURRENCY_UNIT_WORDS = frozenset(w for pair in _CURRENCY.values() for w in pair)


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (substitutions, deletions, insertions cost 1)."""
    prev = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        cur = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ref_word != hyp_word))
        prev = cur
    return prev[-1]


def word_error_rate(reference: str, hypothesis: str, *, normalize: bool = True) -> float:
    """(substitutions + deletions + insertions) / number of reference words.

    Both strings go through :func:`normalize_for_wer` first unless ``normalize=False`` (then they are only
    split on whitespace). An empty reference gives 0.0 for an empty hypothesis and 1.0 otherwise. The value
    can exceed 1.0 when the hypothesis has many insertions.
    """
    if normalize:
        reference, hypothesis = normalize_for_wer(reference), normalize_for_wer(hypothesis)
    ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return float(bool(hyp))
    return edit_distance(ref, hyp) / len(ref)


def corpus_word_error_rate(references: Sequence[str], hypotheses: Sequence[str], *, normalize: bool = True) -> float:
    """WER over a whole set: total edits / total reference words (long sentences weigh more)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits = words = 0
    for reference, hypothesis in zip(references, hypotheses):
        if normalize:
            reference, hypothesis = normalize_for_wer(reference), normalize_for_wer(hypothesis)
        ref = reference.split()
        edits += edit_distance(ref, hypothesis.split())
        words += len(ref)
    return edits / words if words else 0.0
