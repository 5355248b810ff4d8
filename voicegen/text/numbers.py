"""Number words for English (US style: "three thousand four hundred ninety-seven").

We use num2words for the words themselves rather than a hand-written table: it is small, pure Python,
already a dependency, and its English cardinals/ordinals are well tested up to huge scales. It writes
British style ("one hundred and one", "three thousand, four hundred"), so we drop the "and" and the commas;
years we build ourselves so that 1905 reads "nineteen oh five" and 2005 "two thousand five".
"""

from __future__ import annotations

from num2words import num2words

MAX_WORDED = 10**15
"""Integers at or above this are read digit by digit (a 60-digit number as "one two three ...")."""

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _us(words: str) -> str:
    return words.replace(",", "").replace(" and ", " ")


def digits(s: str) -> str:
    """Each digit of ``s`` as a word: "907" -> "nine zero seven" (non-digits are ignored)."""
    return " ".join(_DIGITS[int(c)] for c in s if c.isdigit())


def cardinal(n: int) -> str:
    """Integer -> words: 3497 -> "three thousand four hundred ninety-seven", -5 -> "minus five"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n >= MAX_WORDED:
        return digits(str(n))
    return _us(num2words(n))


def ordinal(n: int) -> str:
    """Integer -> ordinal words: 22 -> "twenty-second"."""
    if n < 0 or n >= MAX_WORDED:
        return cardinal(n)
    return _us(num2words(n, to="ordinal"))


def year(n: int) -> str:
    """Year -> words: 1945 -> "nineteen forty-five", 1905 -> "nineteen oh five", 2005 -> "two thousand five"."""
    if not 1000 <= n <= 9999:
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if hi % 10 == 0 and lo < 10:  # 2000, 2005, 1000
        return cardinal(n)
    if lo == 0:
        return cardinal(hi) + " hundred"
    if lo < 10:
        return cardinal(hi) + " oh " + cardinal(lo)
    return cardinal(hi) + " " + cardinal(lo)


def plural(words: str) -> str:
    """Pluralize the last number word: "nineteen ninety" -> "nineteen nineties", "six" -> "sixes"."""
    if words.endswith("y"):
        return words[:-1] + "ies"
    if words.endswith(("x", "s")):
        return words + "es"
    return words + "s"


def decimal(int_part: str, frac_part: str) -> str:
    """"3", "14" -> "three point one four"; "", "5" -> "point five"."""
    head = cardinal(int(int_part)) if int_part else ""
    tail = digits(frac_part)
    return f"{head} point {tail}".strip() if tail else head


def number(s: str) -> str:
    """A plain numeral string, optionally with grouping commas and a decimal part, -> words."""
    s = s.replace(",", "")
    if "." in s:
        whole, _, frac = s.partition(".")
        return decimal(whole, frac)
    return cardinal(int(s))


def fraction(num: int, den: int) -> str:
    """1/2 -> "one half", 3/4 -> "three quarters", 5/8 -> "five eighths"."""
    if den == 0 or den >= MAX_WORDED or num >= MAX_WORDED:
        return f"{cardinal(num)} over {cardinal(den)}"
    if den == 1:
        return cardinal(num)
    if den == 2:
        word = "half" if num == 1 else "halves"
    elif den == 4:
        word = "quarter" if num == 1 else "quarters"
    else:
        word = ordinal(den) if num == 1 else plural(ordinal(den))
    return f"{cardinal(num)} {word}"
