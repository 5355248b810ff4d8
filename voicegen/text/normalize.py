"""English text normalization: written text -> the words a reader would say.

``normalize`` is pure and idempotent (``normalize(normalize(x)) == normalize(x)``). Its output holds only
letters (Latin and Greek for English, see :func:`_english_letters`; any script for other languages),
apostrophes and hyphens inside words, the pause punctuation the model knows (``. , ; : ! ? — … " “ ” ( )``),
spaces, newlines (a blank line marks a paragraph) and private-use characters (the frontend's placeholders for
inline phonemes). Sentence-ending periods survive; the periods of abbreviations, initials and decimals
("1.5M", "2.30pm" included) do not, so the sentence splitter can trust every remaining ``.``.

Rules run in a fixed order, most specific first: letters of other scripts, list markers, URLs and e-mail
addresses, hashtags and @handles, all-caps lines, abbreviations and titles, dates, time ranges, durations
(10:30:15), times, phone numbers, versions, decades, currency, units and percentages, scaled amounts (1.5M)
and multipliers (3x), years, ranges, ordinals, splits (50/50), fractions, grouped numbers, decimals, plain
numbers, Roman numerals, acronyms, symbols; then the characters are tidied. The whole pass repeats until
nothing changes. Number words come from :mod:`voicegen.text.numbers` (num2words).
"""

from __future__ import annotations

import re
import unicodedata

from voicegen.text.gates import Rule, apply_rules
from voicegen.text.numbers import cardinal, decimal, digits, fraction, number, ordinal, plural, year

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
_MONTH_ABBR = {m[:3]: m for m in MONTHS} | {"Sept": "September"}
_MONTH_RE = "|".join(MONTHS) + "|" + "|".join(f"{a}\\.?" for a in _MONTH_ABBR if a != "May")


DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_ABBR = {"Mon": "Monday", "Tue": "Tuesday", "Tues": "Tuesday", "Wed": "Wednesday", "Thu": "Thursday",
             "Thur": "Thursday", "Thurs": "Thursday", "Fri": "Friday", "Sat": "Saturday", "Sun": "Sunday"}
_DAY_RE = "|".join(DAYS) + "|" + "|".join(sorted(_DAY_ABBR, key=len, reverse=True))


def _day(name: str) -> str:
    return _DAY_ABBR.get(name.rstrip("."), name.rstrip("."))


def _weekday_date(m: re.Match[str]) -> str:
    """Tue 3/14, Friday 12/1: a weekday before month/day is a date (alone, 3/14 is a fraction)."""
    mo, d = int(m.group(2)), int(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return _sp(f"{_day(m.group(1))}, {MONTHS[mo - 1]} {ordinal(d)}")


def _month(name: str) -> str:
    name = name.rstrip(".")
    return _MONTH_ABBR.get(name, name)


_ENDS_SENTENCE = re.compile(r"\s+[A-Z]|\s*\Z")


def _ends_sentence(m: re.Match[str]) -> bool:
    """Whether the text after the match looks like a new sentence (capital letter or end of text)."""
    return _ENDS_SENTENCE.match(m.string, m.end()) is not None


_NEXT_WORD = re.compile(r"\s+([A-Za-z]+)")
"""The word after a match, read at its end (`.match(m.string, m.end())`: slicing the rest of the text for each match
would make a rule quadratic in a long text)."""


def _before(m: re.Match[str], width: int = 60) -> str:
    """Up to ``width`` characters before the match; a leading NUL marks that the text goes on further back."""
    start = max(0, m.start() - width)
    return ("\0" if start else "") + m.string[start:m.start()]


def _sp(s: str) -> str:
    """Pad a spoken replacement with spaces so it never glues onto neighbours ("5G" -> " five G")."""
    return f" {s} "


# ---------------------------------------------------------------- cleanup of the raw characters

_CHAR_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201a": "'", "`": "'", "\u00b4": "'",
    "\u201e": "\u201c", "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
    "\u2013": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-", "\u2015": "\u2014",
    "\u2044": "/", "\u00a0": " ", "\t": " ", "\r": "\n", "\u2028": "\n", "\u2029": "\n\n",
    "[": "(", "]": ")", "{": "(", "}": ")", "\u00a1": " ", "\u00bf": " ",
})


def _clean_chars(text: str) -> str:
    """NFKC, ASCII digits and quotes, and no control/format/separator characters except newlines."""
    text = unicodedata.normalize("NFKC", text.replace("\r\n", "\n")).translate(_CHAR_MAP)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch == "\n" or cat == "Co":
            out.append(ch)
        elif cat == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif cat[0] in "CZ":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


_LATIN_MAP = str.maketrans({
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ħ": "h", "Ħ": "H", "ı": "i", "ŧ": "t",
    "Ŧ": "T",
})
"""Latin letters that NFKD does not take apart into an ASCII letter and a mark, as an English reader says them."""


def _english_letters(text: str) -> str:
    """Latin letters without an ASCII decomposition spelled out ("Straße" -> "Strasse"), and letters of scripts
    other than Latin and Greek (kept: espeak reads α, π, μ, Ω by name) dropped with the marks on them: English
    espeak-ng reads "世界" as "Chinese letter, Chinese letter". Modifier letters (ˈ, ʻ) belong to no script and
    stay."""
    return text if text.isascii() else _NON_ASCII.sub(_english_run, text.translate(_LATIN_MAP))


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _english_run(m: re.Match[str]) -> str:
    """`_english_letters` of one run of non-ASCII characters (marks sit on the letter before them, in the run)."""
    out: list[str] = []
    dropped = False
    for ch in m.group(0):
        cat = unicodedata.category(ch)
        if cat[0] == "M" and dropped:
            continue
        dropped = cat[0] == "L" and not unicodedata.name(ch, "LATIN").startswith(("LATIN", "GREEK", "MODIFIER"))
        out.append(" " if dropped else ch)
    return "".join(out)


# ---------------------------------------------------------------- URLs, e-mail, hashtags, handles

_URL_SYMBOLS = {".": " dot ", "/": " slash ", "-": " dash ", "_": " underscore ", ":": " colon ",
                "?": " question mark ", "=": " equals ", "&": " and ", "#": " hash ", "@": " at ",
                "~": " tilde ", "+": " plus ", "%": " percent "}


def _spell_url(s: str) -> str:
    s = re.sub(r"^[a-zA-Z]+://", "", s)
    s = re.sub(r"^www\.", "W W W dot ", s, flags=re.IGNORECASE)
    return _sp("".join(_URL_SYMBOLS.get(c, c) for c in s.rstrip("/")))


def _url(m: re.Match[str]) -> str:
    url = m.group(0)
    trail = re.search(r"[.,;:!?)\"']+$", url)
    tail = trail.group(0) if trail else ""
    return _spell_url(url[: len(url) - len(tail)]) + tail


def _camel(s: str) -> str:
    s = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", s)
    return s.replace("_", " ")


_TLD = r"(?:com|org|net|io|dev|ai|edu|gov|co|uk|de|fr|jp|info|app|me|tv|us)"
WEB_RULES: list[Rule] = [
    # emoticons, first (before "<3" is a comparison and "3" a number): nothing to say, and a "(" or ")" left behind
    # reads as a pause at best
    (re.compile(r"(?<![\w:/])(?:[:;=][-^']?[()DPpOo/\\|*\]\[]|<3|\^_\^)(?![\w(/])"), lambda m: " "),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
     lambda m: _sp("".join(_URL_SYMBOLS.get(c, c) for c in m.group(0)))),
    (re.compile(r"\b(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)[^\s<>\"]+"), _url),
    (re.compile(rf"\b[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*\.{_TLD}\b(?:/[^\s<>\"]*)?"), _url),
    (re.compile(r"(?<![\w&#])#([A-Za-z]\w*)"), lambda m: _sp("hashtag " + _camel(m.group(1)))),
    (re.compile(r"(?<![\w@])@([A-Za-z_]\w*)"), lambda m: _sp("at " + _camel(m.group(1)))),
]

# ---------------------------------------------------------------- abbreviations and titles

TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Prof": "Professor", "Gen": "General",
          "Capt": "Captain", "Lt": "Lieutenant", "Sgt": "Sergeant", "Rev": "Reverend", "Gov": "Governor",
          "Sen": "Senator", "Rep": "Representative", "Pres": "President", "Col": "Colonel", "Mt": "Mount", "Ft": "Fort",
          "Fr": "Father", "Hon": "Honorable"}
"""Titles before a name: never end a sentence; the period is optional ("Mr Smith")."""

ABBREVIATIONS = {"etc": "et cetera", "vs": "versus", "approx": "approximately", "Inc": "Incorporated",
                 "Ltd": "Limited", "Corp": "Corporation", "Co": "Company", "Jr": "Junior", "Sr": "Senior",
                 "Ave": "Avenue", "Blvd": "Boulevard", "Rd": "Road", "Dept": "Department", "Fig": "Figure",
                 "fig": "figure", "Vol": "Volume", "vol": "volume", "Ch": "Chapter", "ch": "chapter",
                 "Est": "Established", "est": "established", "min": "minutes", "max": "maximum",
                 "dept": "department", "govt": "government", "Univ": "University"}
ABBREVIATIONS |= {k.capitalize(): v.capitalize() for k, v in ABBREVIATIONS.items() if k.islower()
                  and k.capitalize() not in ABBREVIATIONS}
"""Abbreviations that need their period (which is dropped unless a capitalized word follows)."""

_NO_PERIOD = {"vs", "Vs", "approx", "Approx", "Fig", "fig", "Vol", "vol", "Ch", "ch"}


def _abbrev(m: re.Match[str]) -> str:
    word = m.group(1)
    spoken = ABBREVIATIONS[word]
    ends = word not in _NO_PERIOD and _ends_sentence(m)
    return spoken + ("." if ends else "")


def _saint_or_street(m: re.Match[str]) -> str:
    word, before, after = m.group(1), _before(m), m.string[m.end(): m.end() + 2]
    place = {"St": ("Saint", "Street"), "Dr": ("Doctor", "Drive")}[word]
    prev = re.search(r"(\S+)\s+$", before)
    prev_is_name = prev is not None and re.fullmatch(r"[A-Z][a-z]+", prev.group(1)) is not None
    sentence_start = prev is not None and re.search(r"(^|[.!?\n]\s*)\S+\s+$", before) is not None
    followed_by_name = re.match(r"\s+[A-Z]", after) is not None
    if followed_by_name and (not prev_is_name or sentence_start):
        return place[0]
    return place[1] + ("." if _ends_sentence(m) else "")


ABBREV_RULES: list[Rule] = [
    (re.compile(r"\be\.\s?g\.(?=\W|$)", re.IGNORECASE), lambda m: "for example"),
    (re.compile(r"\bi\.\s?e\.(?=\W|$)", re.IGNORECASE), lambda m: "that is"),
    (re.compile(r"\bet al\.(?=\W|$)"), lambda m: "and others"),
    (re.compile(r"\bPh\.\s?D\.(?=\W|$)"), lambda m: "P H D"),
    (re.compile(r"\bRs\.?\s?(?=\d)"), lambda m: "₹"),  # Rs. 500: rupees
    (re.compile(r"(?<![\w.])(pp?|ext)\.\s?(?=\d)"),  # p. 42, pp. 10-12, ext. 204
     lambda m: {"p": "page ", "pp": "pages ", "ext": "extension "}[m.group(1)]),
    (re.compile(r"(?<![\w.])(?:c|ca)\.\s?(?=(?:1\d{3}|20\d{2}|\d{3})\b)"), lambda m: "circa "),  # c. 1500
    (re.compile(r"\b(" + "|".join(TITLES) + r")\.(?=\s)"), lambda m: TITLES[m.group(1)]),
    (re.compile(r"\b(Mr|Mrs|Ms|Prof)(?=\s+[A-Z])"), lambda m: TITLES[m.group(1)]),
    (re.compile(r"\b(St|Dr)\.(?=\W|$)"), _saint_or_street),
    (re.compile(r"\b(St|Dr)(?=\s+[A-Z])"), _saint_or_street),
    (re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\.(?=\W|$)"), _abbrev),
    (re.compile(r"\bvs\b"), lambda m: "versus"),
    (re.compile(r"\b[Nn]o\.\s?(?=\d)"), lambda m: "number "),
    (re.compile(r"#\s?(?=\d)"), lambda m: " number "),
    (re.compile(r"\bOK\b"), lambda m: "okay"),
    (re.compile(r"\b([CF])#(?![\w#])"), lambda m: f"{m.group(1)} sharp"),
    (re.compile(r"(?<![\w.])\.NET\b"), lambda m: "dot net"),
    (re.compile(r"\bx86[-_]64\b"), lambda m: "x eighty-six sixty-four"),
]

# ---------------------------------------------------------------- dates, times, phones, versions


def _date(y: str | None, mo: int, d: int) -> str:
    out = f"{MONTHS[mo - 1]} {ordinal(d)}"
    return out + (f", {year(int(y))}" if y else "")


def _iso_date(m: re.Match[str]) -> str:
    y, mo, d = m.group(1), int(m.group(2)), int(m.group(3))
    if 1 <= mo <= 12 and 1 <= d <= 31:
        return _sp(_date(y, mo, d))
    return _sp(" ".join(number(g) for g in m.groups()))


def _us_date(m: re.Match[str]) -> str:
    mo, d, y = int(m.group(1)), int(m.group(2)), m.group(3)
    if len(y) == 2:
        y = ("20" if int(y) < 50 else "19") + y
    if 1 <= mo <= 12 and 1 <= d <= 31:
        return _sp(_date(y, mo, d))
    return _sp(" slash ".join(number(g) for g in m.groups()))


def _month_date(m: re.Match[str]) -> str:
    month, day, y = _month(m.group(1)), int(m.group(2)), m.group(3)
    out = f"{month} {ordinal(day)}"
    return out + (f", {year(int(y))}" if y else "")


def _day_month(m: re.Match[str]) -> str:
    day, month, y = int(m.group(1)), _month(m.group(2)), m.group(3)
    out = f"the {ordinal(day)} of {month}"
    return _sp(out + (f" {year(int(y))}" if y else ""))


def _ampm(m: re.Match[str], letter: str) -> str:
    sentence_end = m.group(0).endswith(".") and _ends_sentence(m)
    return ("A M" if letter.lower() == "a" else "P M") + ("." if sentence_end else "")


def _time(m: re.Match[str]) -> str:
    h, mi, ap = int(m.group(1)), int(m.group(2)), m.group(3)
    hour = cardinal(h)
    if mi == 0:
        spoken = hour + (" o'clock" if (ap or h <= 12) and h != 0 else " hundred")
        if ap:
            spoken = hour
    elif mi < 10:
        spoken = f"{hour} oh {cardinal(mi)}"
    else:
        spoken = f"{hour} {cardinal(mi)}"
    return _sp(spoken + (" " + _ampm(m, ap) if ap else ""))


def _clock_seconds(m: re.Match[str]) -> str:
    """10:30:15 -> "ten hours, thirty minutes and fifteen seconds": read as a duration, zero parts left out."""
    secs = m.group(3) + (f".{m.group(4)}" if m.group(4) else "")
    amounts = (str(int(m.group(1))), str(int(m.group(2))), secs if m.group(4) else str(int(secs)))
    parts = [f"{number(a)} {unit if a == '1' else unit + 's'}"
             for a, unit in zip(amounts, ("hour", "minute", "second")) if float(a)]
    if len(parts) > 1:
        return _sp(", ".join(parts[:-1]) + " and " + parts[-1])
    return _sp(parts[0] if parts else "zero seconds")


def _phone(m: re.Match[str]) -> str:
    groups = [g for g in re.split(r"[^\d+]+", m.group(0)) if g]
    spoken = ", ".join(("plus " if g.startswith("+") else "") + digits(g) for g in groups)
    return _sp(spoken)


def _local_phone(m: re.Match[str]) -> str:
    """555-1234 is a local phone number, unless a word before it makes it a range ("pages 100-1200")."""
    words = re.findall(r"[A-Za-z]+", _before(m, 20))
    if words and words[-1].lower() in ("page", "pages", "from", "between", "pp", "years", "items", "rows"):
        return m.group(0)
    return _phone(m)


def _version(m: re.Match[str]) -> str:
    return _sp(" point ".join(cardinal(int(p)) if len(p) < 16 else digits(p) for p in m.group(1).split(".")))


_AMPM = r"\s?[AaPp]\.?\s?[Mm]\b\.?"

DATE_RULES: list[Rule] = [
    # Mon-Fri, Mon. to Sun: a range of weekdays ("Sat" and "Sun" alone are words: only in a range or a date)
    (re.compile(rf"\b({_DAY_RE})\.?\s?(?:-|to|through)\s?({_DAY_RE})\b(\.?)"),
     lambda m: f"{_day(m.group(1))} to {_day(m.group(2))}" + ("." if m.group(3) and _ends_sentence(m) else "")),
    (re.compile(rf"\b({_DAY_RE})\.?,?\s+(\d{{1,2}})/(\d{{1,2}})\b(?!/)"), _weekday_date),
    (re.compile(r"\b(Mon|Tues?|Wed|Thu(?:rs?)?|Fri)\.(?=\s)"), lambda m: _day(m.group(1))),
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), _iso_date),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"), _us_date),
    (re.compile(rf"\b({_MONTH_RE})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?"), _month_date),
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_RE})(?:,?\s+(\d{{4}})\b)?"), _day_month),
    (re.compile(rf"\b({'|'.join(a for a in _MONTH_ABBR if a != 'May')})\.(?=\s)"), lambda m: _month(m.group(1))),
    (re.compile(rf"(?<![\d:])(\d{{1,2}}(?:[:.][0-5]\d)?(?:{_AMPM})?)\s?-\s?(?=\d{{1,2}}(?:[:.][0-5]\d)?{_AMPM})"),
     lambda m: re.sub(r"^(\d+)\.", r"\1:", m.group(1)) + " to "),  # 5pm-7pm, 1.30-2.30pm: a time range
    (re.compile(r"(?<![\d:])((?:[01]?\d|2[0-3]):[0-5]\d)\s?-\s?(?=(?:[01]?\d|2[0-3]):[0-5]\d(?![\d:]))"),
     lambda m: m.group(1) + " to "),
    (re.compile(r"(?<![\d:])(\d{1,2}):([0-5]\d):([0-5]\d)(?:\.(\d+))?\b(?!:\d)"), _clock_seconds),
    (re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?:\s*([AaPp])\.?\s?[Mm]\b\.?)?"), _time),
    # N:M with one digit after the colon is no time (minutes have two): a ratio or a score, "16:9", "won 3:1"; a
    # verse or a score after a name ("Genesis 1:1", "Arsenal 3:1") is read as two numbers
    (re.compile(r"(?<![\d:])(\d{1,3}):(\d)(?![\d:])"),
     lambda m: _sp(cardinal(int(m.group(1))) + (" " if re.search(r"\b[A-Z][a-z]+\s+$", _before(m, 30))
                                                else " to ") + cardinal(int(m.group(2))))),
    (re.compile(r"(?<![$€£¥₹₩.])\b(1[0-2]|0?[1-9])\.([0-5]\d)\s?([AaPp])\.?\s?[Mm]\b\.?"), _time),  # 2.30pm
    (re.compile(r"(?<![.,])\b(\d{1,2})\s?([AaPp])\.?[Mm]\b\.?"),
     lambda m: _sp(cardinal(int(m.group(1))) + " " + _ampm(m, m.group(2)))),
    (re.compile(r"\b([AaPp])\.[Mm]\.(?=\W|$)"), lambda m: _sp(_ampm(m, m.group(1)))),
    (re.compile(r"(?<![\w+])(?:\+?1[\s.-])?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"), _phone),
    (re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]\d{2,5}){2,5}\b"), _phone),
    (re.compile(r"(?<![\w+$.,-])\d{3}-\d{4}\b(?!-\d)"), _local_phone),
    (re.compile(r"\b[vV](\d+(?:\.\d+)*)\b"), lambda m: " version" + _version(m)),
    (re.compile(r"\b(\d+(?:\.\d+){2,})\b"), _version),
]

# ---------------------------------------------------------------- money, percent, units

CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
              "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "", ""),
              "₹": ("rupee", "rupees", "paisa", "paise"), "₩": ("won", "won", "", "")}
_CODES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
_SCALES = {"k": "thousand", "K": "thousand", "thousand": "thousand", "m": "million", "M": "million",
           "mn": "million", "million": "million", "b": "billion", "B": "billion", "bn": "billion",
           "billion": "billion", "trillion": "trillion", "T": "trillion"}
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"


def _money(m: re.Match[str]) -> str:
    """$3.50 -> "three dollars and fifty cents", $.99 -> "ninety-nine cents", -$5 and $-5 -> "minus five dollars"."""
    sign, sym, amount, scale = m.group(1) or m.group(3), m.group(2), m.group(4).replace(",", ""), m.group(5)
    one, many, cent, cents = CURRENCIES[sym]
    minus = "minus " if sign else ""
    if scale:
        return _sp(f"{minus}{number(amount)} {_SCALES[scale]} {many}")
    whole, _, frac = amount.partition(".")
    if frac and (len(frac) != 2 or not cent):
        return _sp(f"{minus}{number(amount)} {many}")
    w, c = int(whole or 0), int(frac or 0)
    parts = []
    if w or not c:
        parts.append(f"{cardinal(w)} {one if w == 1 else many}")
    if c:
        parts.append(f"{cardinal(c)} {cent if c == 1 else cents}")
    return _sp(minus + " and ".join(parts))


UNITS = {"km/h": ("kilometer per hour", "kilometers per hour"), "km": ("kilometer", "kilometers"),
         "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"), "m": ("meter", "meters"),
         "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"), "g": ("gram", "grams"),
         "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
         "mph": ("mile per hour", "miles per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
         "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
         "°": ("degree", "degrees"), "GB": ("gigabyte", "gigabytes"), "MB": ("megabyte", "megabytes"),
         "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"), "TB": ("terabyte", "terabytes"),
         "GHz": ("gigahertz", "gigahertz"), "MHz": ("megahertz", "megahertz"), "kHz": ("kilohertz", "kilohertz"),
         "Hz": ("hertz", "hertz"), "ms": ("millisecond", "milliseconds"), "min": ("minute", "minutes"),
         "hr": ("hour", "hours"), "hrs": ("hour", "hours"), "h": ("hour", "hours"), "s": ("second", "seconds"),
         "sec": ("second", "seconds"), "ft": ("foot", "feet"), "mi": ("mile", "miles"),
         "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"), "L": ("liter", "liters"),
         "kWh": ("kilowatt hour", "kilowatt hours"), "kW": ("kilowatt", "kilowatts"), "W": ("watt", "watts"),
         "V": ("volt", "volts"), "mAh": ("milliamp hour", "milliamp hours"), "dB": ("decibel", "decibels"),
         "tsp": ("teaspoon", "teaspoons"), "tbsp": ("tablespoon", "tablespoons"), "yr": ("year", "years"),
         "yrs": ("year", "years"),
         "fps": ("frame per second", "frames per second"), "px": ("pixel", "pixels"), "%": ("percent", "percent")}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
PER = {u: one for u, (one, _) in UNITS.items() if u not in ("%", "°", "°C", "°F")} | {
    w: w for w in ("hour", "day", "night", "week", "month", "year", "person", "head", "user", "seat", "item")
} | {"wk": "week", "mo": "month", "yr": "year", "pp": "person"}
"""What may follow "/" after an amount, read "per" and then this: "5 m/s", "60 mi/h", "$5/month", "$3/kg"."""
_PER_RE = "|".join(re.escape(u) for u in sorted(PER, key=len, reverse=True))


def _unit(m: re.Match[str]) -> str:
    """5 km -> "five kilometers", 1 h -> "one hour", 5 m/s -> "five meters per second"."""
    sign, amount, unit, per = m.group(1), m.group(2), m.group(3), m.group(4)
    one, many = UNITS[unit]
    spoken = ("minus " if sign else "") + number(amount) + " " + (one if amount == "1" else many)
    return _sp(spoken + (f" per {PER[per]}" if per else ""))


LABEL_CUES = frozenset("room seat gate apartment apt flight platform suite unit row bus route model track level "
                       "floor building block lot exit terminal channel line pin size plan form flat bay grade "
                       "figure fig table chapter section type class vitamin".split())
"""Words after which a number with a letter is a label ("Seat 12B", "Gate 4K"), not a scaled amount."""


def _scaled(m: re.Match[str]) -> str:
    """1.5M -> "one point five million", 12.5k -> "twelve point five thousand". Kept as a letter: a label after
    a word such as "Seat" ("Seat 12B"), K after a one-digit whole number ("4K TV"), and a race ("5k run")."""
    amount, scale = m.group(1), m.group(2) or m.group(3)
    label = re.search(r"\b([A-Za-z]+)\s*$", _before(m, 20))
    race = re.compile(r"\s+(?:run|race|runs|races)\b").match(m.string, m.end())
    if (label and label.group(1).lower() in LABEL_CUES) or race or (scale == "K" and re.fullmatch(r"\d", amount)):
        return m.group(0)
    return _sp(f"{number(amount)} {_SCALES[scale]}")


def _decade(m: re.Match[str]) -> str:
    return _sp(plural(year(int(m.group(1) + "0"))))


MONEY_RULES: list[Rule] = [
    (re.compile(r"\b(\d{1,2})'\s?(\d{1,2})(?:\"|'')"),
     lambda m: _sp(f"{cardinal(int(m.group(1)))} foot {cardinal(int(m.group(2)))}")),
    (re.compile(r"\b(\d[\d,]*)(?:st|nd|rd|th)\s?-\s?(?=\d[\d,]*(?:st|nd|rd|th)\b)"),  # 1st-2nd: a range
     lambda m: _sp(f"{ordinal(int(m.group(1).replace(',', '')))} to")),
    (re.compile(r"(?<=\d)(st|nd|rd|th|s)?-(?=[^\W\d_])|(?<=[^\W\d_])-(?=\d)"),  # 24-hour, 2nd-floor, COVID-19
     lambda m: (m.group(1) or "") + " "),
    (re.compile(rf"(?<=\d)\s?-\s?(?=(?:{_NUM})\s?(?:{_UNIT_RE})(?![\w°]))|(?:(?<=\d%)|(?<=\d\s%))\s?-\s?(?=\d)"),
     lambda m: " to "),  # 5-10 km, 5-10%, 10%-20%: a range
    (re.compile(rf"(?<![\w.])({_NUM})\s?¢"),
     lambda m: _sp(number(m.group(1)) + (" cent" if m.group(1) == "1" else " cents"))),
    (re.compile(rf"(?<=\d)\s?/\s?({_PER_RE})\b(?!/)"), lambda m: f" per {PER[m.group(1)]} "),
    (re.compile(r"\b(USD|EUR|GBP|JPY|INR)\s?(?=\d)"), lambda m: _CODES[m.group(1)]),
    (re.compile(rf"({_NUM})\s?(USD|EUR|GBP|JPY|INR)\b"), lambda m: _CODES[m.group(2)] + m.group(1)),
    (re.compile(r"\b(\d{3})0'?s\b"), _decade),  # 1990s, and 1990's (the decade, an apostrophe or not)
    (re.compile(r"\b(1[1-9]\d{2}|20\d{2})'s\b"), lambda m: _sp(year(int(m.group(1)))).rstrip() + "'s "),  # 2024's
    (re.compile(r"\b(480|720|1080|1440|2160|4320)p\b"),  # video resolutions: 1080p "ten eighty p"
     lambda m: _sp(f"{cardinal(int(m.group(1)[:-2]))} {cardinal(int(m.group(1)[-2:]))} p")),
    (re.compile(r"(?<![\w'.,])'?([1-9])0'?s\b"), lambda m: _sp(plural(cardinal(int(m.group(1)) * 10)))),
    (re.compile(rf"(?<![\d.,])({_NUM})\s?([€£¥₹₩])"), lambda m: m.group(2) + m.group(1)),
    (re.compile(rf"(?<![\w])([$€£¥₹₩])\s?({_NUM})\s?-\s?\1?(?=\d)"), lambda m: f"{m.group(1)}{m.group(2)} to {m.group(1)}"),
    (re.compile(rf"(?<![\w])(-)?([$€£¥₹₩])\s?(-)?({_NUM}|\.\d+)"
                r"(?:\s?(thousand|million|billion|trillion|bn|mn|[kKmMbBT])\b)?"), _money),
    # "6 ft. tall": the abbreviation's period before a lower-case word goes with it (it ended the sentence)
    (re.compile(rf"(?<![\w.])(-)?({_NUM})\s?({_UNIT_RE})(?:/({_PER_RE}))?(?![\w°])(?:\.(?=\s+[a-z]))?"), _unit),
    (re.compile(rf"(?<![\w.])({_NUM})(?:([kKMB])|\s?(bn|mn))\b"), _scaled),
    (re.compile(rf"(?<![\w.])({_NUM})x\b"), lambda m: _sp(number(m.group(1)) + " times")),  # 2.5x, 10x faster
]

# ---------------------------------------------------------------- years, ranges, plain numbers

YEAR_CUES = ("in", "since", "by", "from", "until", "till", "through", "to", "during", "before", "after",
             "around", "circa", "year", "of", "between", "and", "In", "Since", "By", "From", "Until",
             "During", "Before", "After", "Around", "Circa", "Between")


QUANTITY_CUES = frozenset("room page pages number no flight route bus model apartment suite unit code pin step item "
                          "line exit highway interstate channel ticket order invoice account batch lot row seat "
                          "platform gate track level score scored costs cost pay paid weighs weighed over under "
                          "about nearly almost exactly only just than some".split())
"""Words after which a bare four-digit number is a quantity or a label, not a year ("Room 1204", "over 1500")."""
YEAR_BEFORE = re.compile(r"\b(Q[1-4]|H[12]|FY|[Ff]iscal|[Ss]pring|[Ss]ummer|[Ff]all|[Aa]utumn|[Ww]inter|[Cc]lass of)\s*$")
"""Words after which a four-digit number is always a year ("Q3 2024 results", "fall 1999")."""
COUNT_NOUNS = frozenset("people men women children persons feet teeth mice geese sheep fish deer staff".split())
NOT_PLURAL = frozenset("was has is does as its us this thus plus minus yes his hers ours yours theirs always "
                       "perhaps whereas towards besides afterwards less across unless".split())


def _bare_year(m: re.Match[str]) -> str:
    """A four-digit number 1100-2099 with no grouping comma reads as a year ("Q3 2024", "the 1984 Olympics",
    "2024 was good") unless a plural noun follows ("1945 people", "2024 points") or a quantity word precedes it
    ("Room 1204", "over 1500")."""
    before = _before(m, 30)
    if YEAR_BEFORE.search(before):
        return _sp(year(int(m.group(0))))
    words = re.findall(r"[A-Za-z]+|[#$]", before)
    if words and (words[-1].lower() in QUANTITY_CUES or words[-1] in "#$"):
        return m.group(0)
    after = _NEXT_WORD.match(m.string, m.end())
    nxt = after.group(1) if after else ""
    if nxt in COUNT_NOUNS or (
        nxt.islower() and len(nxt) > 2 and nxt.endswith("s") and not nxt.endswith("ss") and nxt not in NOT_PLURAL
    ):
        return m.group(0)
    return _sp(year(int(m.group(0))))


def _split(m: re.Match[str]) -> str:
    """50/50 -> "fifty-fifty", 80/20 -> "eighty-twenty", 20/20 -> "twenty-twenty" (a split or a score, not a
    fraction); other tens stay fractions ("10/30")."""
    a, b = int(m.group(1)), int(m.group(2))
    if a + b == 100 or a == b == 20:
        return _sp(f"{cardinal(a)}-{cardinal(b)}")
    return m.group(0)


NUMBER_RULES: list[Rule] = [
    (re.compile(r"(?<=\w)\s?\^\s?(\d{1,3})\b"),  # x^2 squared, x^3 cubed, 10^6 to the sixth
     lambda m: {"2": " squared ", "3": " cubed "}.get(m.group(1), f" to the {ordinal(int(m.group(1)))} ")),
    (re.compile(r"\b(1\d{3}|20\d{2})\s?-\s?(1\d{3}|20\d{2})\b"),
     lambda m: _sp(f"{year(int(m.group(1)))} to {year(int(m.group(2)))}")),
    (re.compile(rf"\b((?:{'|'.join(YEAR_CUES)})\s+)(1\d{{3}}|20\d{{2}})\b(?![.,]\d)"),
     lambda m: m.group(1) + year(int(m.group(2)))),
    (re.compile(r"\b911\b"), lambda m: " nine one one "),
    (re.compile(r"(?<![\d.,:/-])\b(1[1-9]\d{2}|20\d{2})\b(?![.,:/]\d|\s?%|-\d)"), _bare_year),
    (re.compile(r"(?<=\d)\s-\s(?=\d[\d.,]*\s?=)"), lambda m: " minus "),  # 5 - 3 = 2: an equation, no range
    (re.compile(r"(?<=\d)\s?-\s?(?=[$€£¥]?\d)"), lambda m: " to "),
    (re.compile(r"(?:(?<![\w.])(-))?\b(\d[\d,]*)(st|nd|rd|th)\b"),  # -1st: a floor below ground
     lambda m: _sp(("minus " if m.group(1) else "") + ordinal(int(m.group(2).replace(",", ""))))),
    (re.compile(r"\b24/7\b"), lambda m: " twenty-four seven "),
    (re.compile(r"(?<![\d/])\b9/11\b(?!/\d)"), lambda m: " nine eleven "),  # the day, not nine elevenths
    (re.compile(r"\b([1-9]0)/([1-9]0)\b"), _split),
    (re.compile(r"\b(\d+)\s+(\d+)/(\d+)\b"),
     lambda m: _sp(f"{cardinal(int(m.group(1)))} and {fraction(int(m.group(2)), int(m.group(3)))}")),
    (re.compile(r"(?<![\d.])(\d+\.\d+)/(\d+(?:\.\d+)?)\b"),  # 3.5/5: a rating, not a fraction
     lambda m: _sp(f"{number(m.group(1))} out of {number(m.group(2))}")),
    (re.compile(r"\b(\d{1,15})/(\d{1,15})\b"), lambda m: _sp(fraction(int(m.group(1)), int(m.group(2))))),
    (re.compile(r"(?<![\w.])-(?=\.?\d)"), lambda m: " minus "),
    (re.compile(r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)"), lambda m: _sp(number(m.group(0)))),
    (re.compile(r"(?<![\d.])(\d+)\.(\d+)"), lambda m: _sp(decimal(m.group(1), m.group(2)))),
    (re.compile(r"(?<![\w.])\.(\d+)"), lambda m: _sp(decimal("", m.group(1)))),
    (re.compile(r"\d+"), lambda m: _sp(digits(m.group(0)) if m.group(0).startswith("0") and len(m.group(0)) > 1
                                       else cardinal(int(m.group(0))))),
]

# ---------------------------------------------------------------- Roman numerals, acronyms

_ROMAN = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
ROMAN_CUES = ("Chapter", "Part", "Book", "Volume", "Act", "Scene", "Section", "Phase", "Level", "Article",
              "Episode", "Season", "Stage", "Round", "Class", "Type", "Title", "Appendix", "Unit", "Grade",
              "Wave", "Super Bowl", "World War", "Apollo", "Rocky", "Star Wars", "Final Fantasy")


def roman_value(s: str) -> int:
    """Value of a valid Roman numeral string ("XIV" -> 14); 0 if ``s`` is not one."""
    if not s or not _ROMAN.fullmatch(s):
        return 0
    total = 0
    for a, b in zip(s, s[1:] + " "):
        v = _ROMAN_VALUES[a]
        total += -v if b != " " and _ROMAN_VALUES[b] > v else v
    return total


def _roman_cue(m: re.Match[str]) -> str:
    v = roman_value(m.group(2))
    return f"{m.group(1)} {cardinal(v)}" if v else m.group(0)


def _roman_name(m: re.Match[str]) -> str:
    v = roman_value(m.group(2))
    return f"{m.group(1)} the {ordinal(v)}" if v >= 2 or m.group(2) == "V" else m.group(0)


ROMAN_RULES: list[Rule] = [
    (re.compile(r"\bWW(II|I)\b"), lambda m: "World War " + cardinal(len(m.group(1)))),  # WWI, WWII
    # a lone L, C, D or M is a letter: "Type C", "Class D", "Appendix C", "Part D"
    (re.compile(rf"\b({'|'.join(ROMAN_CUES)})\s+([IVXLCDM]{{2,}}|[IVX])\b(?!')"), _roman_cue),
    # the cue in lower case ("see chapter IV"), but not before a lone "I" ("the part I liked")
    (re.compile(rf"\b({'|'.join(c.lower() for c in ROMAN_CUES)})\s+([IVXLCDM]{{2,}}|[VX])\b(?!')"), _roman_cue),
    (re.compile(r"\b([A-Z][a-z]+)\s+([IVX]{2,}|V)\b(?!')"), _roman_name),
]

READ_ACRONYMS = {"NASA": "Nasa", "NATO": "Nato", "UNESCO": "Unesco", "UNICEF": "Unicef", "NASDAQ": "Nasdaq",
                 "OPEC": "Opec", "FIFA": "Fifa", "AIDS": "Aids", "SCUBA": "scuba", "LASER": "laser",
                 "RADAR": "radar", "GIF": "gif", "JPEG": "jay peg", "PIN": "pin", "RAM": "ram", "ROM": "rom",
                 "SIM": "sim", "CAPTCHA": "captcha", "COVID": "Covid", "CUDA": "Cuda", "JSON": "Jason",
                 "ASCII": "asky", "GUI": "gooey", "IKEA": "Ikea", "LEGO": "Lego", "WASP": "wasp",
                 "POTUS": "Potus", "SARS": "Sars", "FAQ": "fack", "YAML": "yammel", "NAND": "nand",
                 "TOEFL": "toefl", "SWAT": "swat", "AWOL": "a-wall", "ZIP": "zip", "LOL": "lol",
                 "SIGGRAPH": "siggraph", "ICANN": "eye can"}
"""All-caps words read as words; everything else in capitals (2-4 letters, or no vowel) is spelled."""

PLAIN_CAPS = {"I", "A", "AN", "AND", "THE", "OF", "TO", "IN", "ON", "AT", "IS", "IT", "OR", "BE", "BY", "DO",
              "GO", "HE", "ME", "MY", "NO", "SO", "UP", "WE", "OH", "HI", "YES", "NOT", "FOR", "BUT", "ARE",
              "YOU", "WAS", "ALL", "NEW", "NOW", "HOW", "WHY", "WHO", "OUT", "NEWS", "STOP", "HELP", "WARNING",
              "NOTE", "FREE", "SALE", "THIS", "THAT", "WITH", "FROM", "HAVE", "WILL", "JUST", "VERY", "MUST",
              "DONE", "TODO", "NEVER", "EVER", "ONLY", "MORE", "MOST", "BIG", "END", "ONE", "TWO", "TEN"}
"""Common words that appear in capitals for emphasis; lower-cased instead of spelled."""


def _caps(m: re.Match[str]) -> str:
    word, plural_s = m.group(1), m.group(2) or ""
    if word in READ_ACRONYMS:
        return READ_ACRONYMS[word] + plural_s
    if word in PLAIN_CAPS:
        return word.lower() + plural_s
    if len(word) <= 4 or not re.search(r"[AEIOUY]", word):
        spelled = " ".join(word)
        return spelled + ("'s" if plural_s else "")
    return word.lower() + plural_s


def _unshout_line(line: str) -> str:
    words = re.findall(r"[^\W\d_]{2,}", line)
    caps = [w for w in words if w.isupper() and w not in READ_ACRONYMS]
    if len(caps) >= 3 and len(caps) * 2 > len(words):
        return re.sub(r"\b[A-Z]{2,}\b", lambda m: m.group(0) if m.group(0) in READ_ACRONYMS else m.group(0).lower(), line)
    return line


_DOTTED = re.compile(r"(?<![\w.])((?:[A-Za-z]\.){2,})(?=\W|$)")


_DOTTED_NEXT = re.compile(r"[ \t]*(\n|$|(?:[\"')]*\s+)([A-Z][a-z]*)\b)")


def _dotted(m: re.Match[str]) -> str:
    """U.S. -> "U S"; its last period kept where it ends the sentence: at the end of a line, or before a word that
    starts sentences ("in the U.S. It is" splits there; "U.S. Army", "the U.S. and" do not)."""
    letters = " ".join(m.group(1).replace(".", "").upper())
    after = _DOTTED_NEXT.match(m.string, m.end())
    ends = after is not None and (after.group(2) is None or after.group(2) in SENTENCE_STARTERS)
    return letters + ("." if ends else "")


SENTENCE_STARTERS = frozenset("The An This That These Those Then There It Its We He She They You Our My His Her "
                              "Their But And So Or Yet If When While After Before Now Next Still Also However "
                              "Meanwhile Here What Why How Who Where Let Please Thanks Yes No Maybe".split())
"""Words that start sentences far more often than they follow an initial: "plan B. Then we go" keeps its break."""


def _initial(m: re.Match[str]) -> str:
    """Initials ("J. R. R. Tolkien", "George W. Bush") lose their period; "Plan B. Then" keeps it."""
    after = _NEXT_WORD.match(m.string, m.end())
    if after and after.group(1) in SENTENCE_STARTERS:
        return m.group(0)
    before = _before(m, 40)
    if re.search(r"(^|[.!?\n]\s*|[A-Z][a-z]+\s+|\b[A-Z]\s+)$", before):
        return m.group(1)
    return m.group(0)


ACRONYM_RULES: list[Rule] = [
    (re.compile(r"\b([A-Z]{1,3})&([A-Z]{1,3})\b"),  # AT&T, Q&A, R&D: letters, not the word "at"
     lambda m: " ".join(m.group(1)) + " and " + " ".join(m.group(2))),
    (_DOTTED, _dotted),
    (re.compile(r"(?<![\w.'])([A-HJ-Z])\.(?=\s+[A-Z])"), _initial),
    (re.compile(r"\b([A-Z]{2,})(s)?\b(?!')"), _caps),
    (re.compile(r"\b([A-Z]{2,})()(?='s\b)"), _caps),  # the CEO's plan, NASA's: the acronym before its possessive
]

# ---------------------------------------------------------------- symbols and punctuation

SYMBOL_RULES: list[Rule] = [
    (re.compile(r"\band/or\b"), lambda m: "and or"),
    (re.compile(r"(?<![\w/])([wc])/o\b|(?<![\w/])w/(?=\s)"),  # w/o sugar, c/o John, w/ cheese
     lambda m: {"w": "without", "c": "care of"}[m.group(1)] if m.group(1) else "with"),
    (re.compile(r"\b([A-Z])/([A-Z])\b"), lambda m: f"{m.group(1)} {m.group(2)}"),  # A/B testing, N/A
    (re.compile(r"&"), lambda m: " and "),
    (re.compile(r"\+"), lambda m: " plus "),
    (re.compile(r"\s=\s|="), lambda m: " equals "),
    (re.compile(r"\s<\s"), lambda m: " less than "),
    (re.compile(r"\s>\s"), lambda m: " greater than "),
    (re.compile(r"@"), lambda m: " at "),
    (re.compile(r"%"), lambda m: " percent "),
    (re.compile(r"°"), lambda m: " degrees "),
    (re.compile(r"×"), lambda m: " times "),
    (re.compile(r"÷"), lambda m: " divided by "),
    (re.compile(r"(?<=\w)\s?\^\s?(?=-?\w)"), lambda m: " to the "),  # x^n, 10^-3
    (re.compile(r"±"), lambda m: " plus or minus "),
    (re.compile(r"§"), lambda m: " section "),
    (re.compile(r"#"), lambda m: " hash "),
    (re.compile(r"(?<=\w)/(?=\w)"), lambda m: " slash "),
    (re.compile(r"\.{3,}|(?:\.\s){2,}\.|…+"), lambda m: "…"),
    (re.compile(r"\s+-+\s+|--+|(?<=\s)-(?=\w)|(?<=\w)-(?=\s)"), lambda m: " — "),
    (re.compile(r"—+"), lambda m: " — "),
]

_KEEP_PUNCT = set('.,;:!?—…"“”()')


def _final_chars(text: str) -> str:
    out: list[str] = []  # one non-empty string per kept character
    n = len(text)
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if cat[0] == "L" or cat == "Co" or ch in _KEEP_PUNCT or ch in " \n":
            out.append(ch)
        elif cat[0] == "M":  # a combining mark stays only on a letter (keycaps, stray marks and selectors go)
            if out and unicodedata.category(out[-1])[0] in "LM":
                out.append(ch)
        elif ch in "'-":
            ok = (i > 0 and text[i - 1].isalpha() and i + 1 < n and text[i + 1].isalpha())
            out.append(ch if ok else " ")
        else:
            out.append(" ")
    return "".join(out)


def _strongest(run: str) -> str:
    for mark in "?!.…;:—,":
        if mark in run:
            return mark
    return run[0]


def _tidy(text: str) -> str:
    text = _final_chars(text)
    lines = []
    for line in text.split("\n"):
        line = re.sub(r" +", " ", line).strip()
        line = re.sub(r" (?=[.,;:!?…)”])", "", line)  # no space before closing punctuation
        line = re.sub(r"(?<=[(“]) ", "", line)  # none after opening brackets
        line = re.sub(r"[.,;:!?…—]+(?: ?[.,;:!?…—]+)*",
                      lambda m: _strongest(m.group(0).replace(" ", "")) + (" " if " " in m.group(0) else ""), line)
        line = re.sub(r"\(\s*\)", "", line)
        line = re.sub(r"^[.,;:!?…]+\s*", "", line)
        line = re.sub(r" +", " ", line).strip()
        lines.append(line)
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n ")


_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*•·▪‣◦]|(\d{1,3})[.)])[ \t]+", re.MULTILINE)


def _list_marker(m: re.Match[str]) -> str:
    return f"{cardinal(int(m.group(1)))}, " if m.group(1) else ""


def _apply(rules: list[Rule], text: str) -> str:
    """Each rule's `pattern.sub(fn, text)` in turn; a rule whose pattern needs a character the text lacks (a digit,
    "%", "/", ...) is skipped without a scan (`voicegen.text.gates`)."""
    return apply_rules(rules, text)


def _english(text: str) -> str:
    text = _english_letters(text)
    text = _LIST_MARKER.sub(_list_marker, text)
    text = _apply(WEB_RULES, text)
    text = "\n".join(_unshout_line(line) for line in text.split("\n"))
    text = _apply(ABBREV_RULES, text)
    text = _apply(DATE_RULES, text)
    text = _apply(MONEY_RULES, text)
    text = _apply(NUMBER_RULES, text)
    text = _apply(ROMAN_RULES, text)
    text = _apply(ACRONYM_RULES, text)
    return _apply(SYMBOL_RULES, text)


def _foreign_number(digits_: str, language: str) -> str:
    """A digit run in another language, through num2words if it knows the language, else dropped."""
    from num2words import num2words

    if len(digits_) > 15:
        return ""
    try:
        return num2words(int(digits_), lang=language.split("-")[0].lower())
    except (NotImplementedError, OverflowError, ValueError):
        return ""


def _once(text: str, language: str) -> str:
    text = _clean_chars(text)
    if language.lower().startswith("en"):
        text = _english(text)
    else:
        text = re.sub(r"\d+", lambda m: _sp(_foreign_number(m.group(0), language)), text)
        text = _apply(SYMBOL_RULES[-3:], text)
    return _tidy(text)


def normalize(text: str, language: str = "en-us") -> str:
    """Written text -> speakable words (see the module docstring). Pure and idempotent.

    Other languages get only the character cleanup, punctuation tidying and plain integers through
    num2words (dropped if num2words does not know the language).
    """
    out = _once(text, language)
    if out == text:  # already normal (most sentences of plain prose): a second pass would change nothing either
        return out
    for _ in range(4):  # a rule's output can rarely enable another rule; iterate to the fixed point
        again = _once(out, language)
        if again == out:
            break
        out = again
    return out
