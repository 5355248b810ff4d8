"""Multi-speaker scripts: the text and JSON formats, pause directives, and casting speakers to voices.

Text format (see `Script.parse`)::

    ---
    Host: jf_alpha, speed=1.05, pan=-0.3, pitch=-2
    Guest: jm_kumo
    ---
    # comments start with '#'
    Host: Welcome back to the show! [pause 1.5s] Today we talk about...
          a continuation line belongs to the same turn.
    Guest: Thanks for having me.

Nothing here renders audio; `voicegen.podcast.mix` turns a Script plus a synthesis function into an episode.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..constants import PITCH_RANGE, SPEED_RANGE

MAX_PAUSE_S = 60.0
DEFAULT_PAUSE_S = 0.5
HEADER_FENCE = "---"

_NAME = r"[^\W\d_][\w.'\-]*(?: [^\W\d_][\w.'\-]*){0,2}"
_NAME_RE = re.compile(rf"^{_NAME}$")
# A turn starts with a name followed by ':' and a space (or end of line), or by a full-width colon.
_TURN_RE = re.compile(rf"^({_NAME})(?::(?=\s|$)|：)\s*(.*)$")
_PAUSE_RE = re.compile(r"\[\s*pause\b([^\]]*)\]", re.IGNORECASE)
_PAUSE_ARG_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|secs|seconds?)?\s*$", re.IGNORECASE)
_VOICE_RE = re.compile(r"[\w.\-+:/~]+")
_MALE_PREFIXES = ("am_", "bm_", "jm_", "em_", "hm_", "im_", "pm_", "zm_")
_FEMALE_PREFIXES = ("af_", "bf_", "jf_", "ef_", "hf_", "if_", "pf_", "zf_")


@dataclass(frozen=True)
class Pause:
    """Silence inside a turn, from a `[pause 1.5s]` / `[pause 500ms]` / `[pause]` directive."""

    seconds: float


def _parse_pause(arg: str) -> Pause:
    if not arg.strip():
        return Pause(DEFAULT_PAUSE_S)
    m = _PAUSE_ARG_RE.match(arg)
    if not m:
        raise ValueError(f"bad pause directive [pause{arg}]: write e.g. [pause 1.5s] or [pause 500ms]")
    value = float(m.group(1))
    seconds = value / 1000.0 if (m.group(2) or "s").lower() == "ms" else value
    if seconds > MAX_PAUSE_S:
        raise ValueError(f"pause of {seconds:g} s is longer than the {MAX_PAUSE_S:g} s limit")
    return Pause(seconds)


def _format_seconds(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{seconds:g}s"


@dataclass(frozen=True)
class Turn:
    """One speaker's turn. `text` may contain pause directives; whitespace is collapsed to single spaces.

    `pieces` is the turn as spoken text and pauses in order, e.g. ('Welcome back!', Pause(1.5), 'Today...'):
    text pieces are stripped and never empty; consecutive pauses stay separate (their lengths add up). It is
    parsed once, when the turn is made.

    Raises ValueError for an invalid speaker name, empty text or a malformed directive.
    """

    speaker: str
    text: str
    pieces: tuple[str | Pause, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.speaker, str) or not _NAME_RE.match(self.speaker) or len(self.speaker) > 40:
            raise ValueError(
                f"bad speaker name {self.speaker!r}: use up to three words of letters, digits, '.', \"'\" or '-', "
                "starting with a letter (at most 40 characters)"
            )
        if not isinstance(self.text, str):
            raise ValueError(f"turn text for {self.speaker!r} must be a string, got {type(self.text).__name__}")
        object.__setattr__(self, "text", " ".join(self.text.split()))
        if not self.text:
            raise ValueError(f"empty turn for speaker {self.speaker!r}")
        object.__setattr__(self, "pieces", _split_pieces(self.text))

    @property
    def spoken_text(self) -> str:
        """The text without directives (what subtitles show)."""
        return " ".join(p for p in self.pieces if isinstance(p, str))


def _split_pieces(text: str) -> tuple[str | Pause, ...]:
    out: list[str | Pause] = []
    pos = 0
    for m in _PAUSE_RE.finditer(text):
        before = text[pos : m.start()].strip()
        if before:
            out.append(before)
        out.append(_parse_pause(m.group(1)))
        pos = m.end()
    rest = text[pos:].strip()
    if rest:
        out.append(rest)
    return tuple(out)


@dataclass(frozen=True)
class CastMember:
    """How one speaker sounds: a voice (a name, a blend such as 'jf_alpha:2+jm_kumo:1', or a .voice file; None =
    cast automatically), speed factor, stereo pan in [-1, 1], pitch shift in semitones in [-12, 12]."""

    voice: str | None = None
    speed: float = 1.0
    pan: float | None = None
    pitch: float = 0.0

    def __post_init__(self):
        if self.voice is not None and (not isinstance(self.voice, str) or not _VOICE_RE.fullmatch(self.voice)):
            raise ValueError(f"bad voice {self.voice!r}: a name, a blend 'a:2+b:1' or a path to a .voice file "
                             "(letters, digits and _ . - + : / ~)")
        if isinstance(self.pitch, bool) or not isinstance(self.pitch, (int, float)) or not (
            PITCH_RANGE[0] <= self.pitch <= PITCH_RANGE[1]
        ):
            raise ValueError(f"pitch must be a number of semitones in [{PITCH_RANGE[0]:g}, {PITCH_RANGE[1]:g}], "
                             f"got {self.pitch!r}")
        object.__setattr__(self, "pitch", float(self.pitch))
        if isinstance(self.speed, bool) or not isinstance(self.speed, (int, float)) or not (
            SPEED_RANGE[0] <= self.speed <= SPEED_RANGE[1]
        ):
            raise ValueError(f"speed must be a number in [{SPEED_RANGE[0]}, {SPEED_RANGE[1]}], got {self.speed!r}")
        if self.pan is not None and (
            isinstance(self.pan, bool) or not isinstance(self.pan, (int, float)) or not -1.0 <= self.pan <= 1.0
        ):
            raise ValueError(f"pan must be a number in [-1, 1], got {self.pan!r}")
        object.__setattr__(self, "speed", float(self.speed))
        if self.pan is not None:
            object.__setattr__(self, "pan", float(self.pan))

    def to_text(self) -> str:
        parts = [self.voice] if self.voice else []
        if self.speed != 1.0:
            parts.append(f"speed={self.speed!r}")
        if self.pan is not None:
            parts.append(f"pan={self.pan!r}")
        if self.pitch != 0.0:
            parts.append(f"pitch={self.pitch!r}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        out: dict = {"voice": self.voice} if self.voice else {}
        if self.speed != 1.0:
            out["speed"] = self.speed
        if self.pan is not None:
            out["pan"] = self.pan
        if self.pitch != 0.0:
            out["pitch"] = self.pitch
        return out


@dataclass(frozen=True)
class Script:
    """A multi-speaker script: turns in order plus an optional cast (speaker -> CastMember).

    Every cast entry must name a speaker who has a turn (a cast entry for nobody is almost always a typo).
    Entries with only default settings are dropped (a speaker without an entry gets the defaults anyway).
    """

    turns: tuple[Turn, ...]
    cast: Mapping[str, CastMember] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "turns", tuple(self.turns))
        cast = {name: m if isinstance(m, CastMember) else CastMember(m) for name, m in dict(self.cast).items()}
        object.__setattr__(self, "cast", {name: m for name, m in cast.items() if m != CastMember()})
        for t in self.turns:
            if not isinstance(t, Turn):
                raise ValueError(f"turns must be Turn objects, got {type(t).__name__}")
        speakers = self.speakers
        for name in cast:
            if name not in speakers:
                known = ", ".join(speakers) or "(none)"
                raise ValueError(f"cast names speaker {name!r} who has no turn; speakers are: {known}")

    @property
    def speakers(self) -> list[str]:
        """Speaker names in order of first appearance."""
        return list(dict.fromkeys(t.speaker for t in self.turns))

    @property
    def stereo(self) -> bool:
        """True when some speaker has a pan setting (the episode should be rendered in stereo)."""
        return any(m.pan is not None for m in self.cast.values())

    def member(self, speaker: str) -> CastMember:
        """The speaker's cast settings (defaults when the speaker is not in the cast)."""
        return self.cast.get(speaker, CastMember())

    def voices(self, available_voices: Sequence[str], cast_from: Sequence[str] | None = None) -> dict[str, str]:
        """Speaker -> voice for every speaker: the cast's voices first, then automatic casting (`cast_speakers`)."""
        return {name: voice for name, (voice, _) in self.casting(available_voices, cast_from).items()}

    def casting(self, available_voices: Sequence[str],
                cast_from: Sequence[str] | None = None) -> dict[str, tuple[str, float]]:
        """Speaker -> (voice, pitch in semitones) for every speaker: the cast's voices first (any of
        `available_voices`), then automatic casting from `cast_from` (default: `available_voices`; `cast_speakers`),
        which shifts pitch or blends voices once there are more speakers than voices. A cast pitch adds to the
        automatic one."""
        explicit = {name: m.voice for name, m in self.cast.items() if m.voice}
        cast = cast_speakers(self.speakers, available_voices, explicit, cast_from)
        return {name: (voice, pitch + self.member(name).pitch) for name, (voice, pitch) in cast.items()}

    # ---- text form ----------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Script:
        """Parse the text format; ValueError with the line number on any problem.

        - Optional cast header between two `---` lines: `Name: voice, speed=1.1, pan=-0.5, pitch=-3` (voice,
          speed, pan and pitch in semitones each optional; `Name:` alone is allowed). The voice may be a blend
          (`jf_alpha:2+jm_kumo:1`) or a voice file (`voices/host.voice`).
        - `Name: text` starts a turn; following lines without a `Name:` prefix continue it. A blank line ends
          it, and a later paragraph without a prefix is a new turn by the same speaker.
        - Names: up to three words starting with a letter; the colon is followed by a space or end of line
          (or is a full-width '：'). With a cast header, every turn's speaker must be in the cast.
        - A line starting with '#' is a comment; a line starting with '\\' is text (the backslash dropped),
          for continuation lines that would otherwise look like `Name: ...` or a comment.
        - `[pause 1.5s]`, `[pause 500ms]`, `[pause]` (0.5 s) inside a turn insert silence.
        """
        if not isinstance(text, str):
            raise ValueError(f"script must be a string, got {type(text).__name__}")
        lines = text.removeprefix("\ufeff").splitlines()  # a byte-order mark, as some editors save UTF-8
        cast: dict[str, CastMember] = {}
        cast_lines: dict[str, int] = {}
        i = 0
        while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
            i += 1
        has_header = i < len(lines) and lines[i].strip() == HEADER_FENCE
        if has_header:
            if not any(line.strip() == HEADER_FENCE for line in lines[i + 1 :]):
                raise ValueError(f"line {i + 1}: cast header is not closed with '{HEADER_FENCE}' on a line of its "
                                 "own (it starts on this line)")
            i += 1
            while True:
                if i >= len(lines):
                    raise ValueError(f"line {i}: cast header is not closed with '{HEADER_FENCE}'")
                line = lines[i].strip()
                i += 1
                if line == HEADER_FENCE:
                    break
                if not line or line.startswith("#"):
                    continue
                name, member = _parse_cast_line(line, i)
                if name in cast:
                    raise ValueError(f"line {i}: speaker {name!r} is cast twice (first on line {cast_lines[name]})")
                cast[name], cast_lines[name] = member, i

        turns: list[Turn] = []
        speaker: str | None = None
        buf: list[str] = []
        start_line = 0

        def flush():
            if speaker is not None and buf:
                try:
                    turns.append(Turn(speaker, " ".join(buf)))
                except ValueError as e:
                    raise ValueError(f"line {start_line}: {e}") from None
            elif speaker is not None:
                raise ValueError(f"line {start_line}: empty turn for speaker {speaker!r}")

        in_paragraph = False
        for n in range(i, len(lines)):
            line_no, raw = n + 1, lines[n]
            line = raw.strip()
            if not line:
                if in_paragraph:
                    flush()
                    buf = []
                in_paragraph = False
                continue
            if line.startswith("#"):
                continue
            m = None if line.startswith("\\") else _TURN_RE.match(line)
            if m:
                if in_paragraph:
                    flush()
                speaker, buf, start_line = m.group(1), [m.group(2)] if m.group(2) else [], line_no
                if has_header and speaker not in cast:
                    raise ValueError(
                        f"line {line_no}: speaker {speaker!r} is not in the cast ({', '.join(cast)}); add it to the "
                        "header, or start the line with '\\' if it is not a new turn"
                    )
                in_paragraph = True
                continue
            content = line[1:].strip() if line.startswith("\\") else line
            if speaker is None:
                raise ValueError(f"line {line_no}: text before the first speaker; start a turn with 'Name: ...'")
            if not in_paragraph:  # a new paragraph by the same speaker
                buf, start_line, in_paragraph = [], line_no, True
            if content:
                buf.append(content)
        if in_paragraph:
            flush()
        for name, line_no in cast_lines.items():
            if name not in {t.speaker for t in turns}:
                raise ValueError(f"line {line_no}: cast names speaker {name!r} who has no turn")
        return cls(tuple(turns), cast)

    def to_text(self) -> str:
        """The text form; `Script.parse(s.to_text()) == s`."""
        out = []
        if self.cast:  # a header must list every speaker, so uncast ones appear with no settings
            out.append(HEADER_FENCE)
            for name in self.speakers:
                settings = self.member(name).to_text()
                out.append(f"{name}: {settings}" if settings else f"{name}:")
            out.append(HEADER_FENCE)
        out.extend(f"{t.speaker}: {t.text}" for t in self.turns)
        return "\n".join(out) + "\n"

    # ---- JSON form ----------------------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: str | bytes | list | dict) -> Script:
        """From JSON text or the decoded object: a list of {"speaker", "text"} turns, or an object
        {"cast": {name: "voice" | {"voice", "speed", "pan", "pitch"}}, "turns": [...]}. ValueError names the bad item."""
        if isinstance(data, (str, bytes, bytearray)):
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, RecursionError) as e:
                raise ValueError(f"invalid JSON: {e}") from None
        if isinstance(data, list):
            data = {"turns": data}
        if not isinstance(data, dict):
            raise ValueError(f"script JSON must be a list of turns or an object, got {type(data).__name__}")
        _check_keys(data, {"cast", "turns"}, "script")
        turns_data, cast_data = data.get("turns"), data.get("cast") or {}
        if not isinstance(turns_data, list):
            raise ValueError("script: 'turns' must be a list")
        if not isinstance(cast_data, dict):
            raise ValueError("script: 'cast' must be an object mapping speakers to voices/settings")
        turns = []
        for k, item in enumerate(turns_data):
            where = f"turns[{k}]"
            if not isinstance(item, dict):
                raise ValueError(f"{where}: must be an object with 'speaker' and 'text'")
            _check_keys(item, {"speaker", "text"}, where)
            if "speaker" not in item or "text" not in item:
                raise ValueError(f"{where}: needs both 'speaker' and 'text'")
            try:
                turns.append(Turn(item["speaker"], item["text"]))
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        cast = {}
        for name, value in cast_data.items():
            where = f"cast[{name!r}]"
            try:
                if isinstance(value, str) or value is None:
                    cast[name] = CastMember(value)
                elif isinstance(value, dict):
                    _check_keys(value, {"voice", "speed", "pan", "pitch"}, where)
                    cast[name] = CastMember(**value)
                else:
                    raise ValueError("must be a voice name or an object with voice/speed/pan/pitch")
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        return cls(tuple(turns), cast)

    @classmethod
    def from_str(cls, text: str, *, as_json: bool = False) -> Script:
        """Script text in either form: JSON (`from_json`) when it starts with '[' or '{' or `as_json` is set (a
        file named .json: broken JSON then gets the JSON parser's error, not the text format's), else the text
        format (`parse`). ValueError as those give."""
        text = text.removeprefix("\ufeff") if isinstance(text, str) else text
        if as_json or text.lstrip().startswith(("[", "{")):
            return cls.from_json(text)
        return cls.parse(text)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON object form {"cast": {...}, "turns": [...]}; `Script.from_json(s.to_json()) == s`."""
        obj = {
            "cast": {name: m.to_json() for name, m in self.cast.items()},
            "turns": [{"speaker": t.speaker, "text": t.text} for t in self.turns],
        }
        return json.dumps(obj, indent=indent, ensure_ascii=False)


def _check_keys(obj: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(map(str, obj)) - allowed)
    if unknown:
        bad, ok = ", ".join(map(repr, unknown)), ", ".join(sorted(allowed))
        raise ValueError(f"{where}: unknown key(s) {bad}; allowed: {ok}")


def _parse_cast_line(line: str, line_no: int) -> tuple[str, CastMember]:
    m = re.match(rf"^({_NAME})\s*[:：]\s*(.*)$", line)
    if not m:
        raise ValueError(f"line {line_no}: expected 'Name: voice, speed=1.0, pan=0.0, pitch=0' in the cast header, got {line!r}")
    name, rest = m.group(1), m.group(2)
    voice: str | None = None
    settings: dict[str, float] = {}
    items = [p.strip() for p in rest.split(",")] if rest.strip() else []
    for k, item in enumerate(items):
        if "=" in item:
            key, _, value = (s.strip() for s in item.partition("="))
            if key == "voice":
                voice = value
                continue
            if key not in ("speed", "pan", "pitch"):
                raise ValueError(f"line {line_no}: unknown setting {key!r} for {name!r}; use voice, speed, pan or pitch")
            if key in settings:
                raise ValueError(f"line {line_no}: {key} given twice for {name!r}")
            try:
                settings[key] = float(value)
            except ValueError:
                raise ValueError(f"line {line_no}: {key} for {name!r} must be a number, got {value!r}") from None
            if not math.isfinite(settings[key]):
                raise ValueError(f"line {line_no}: {key} for {name!r} must be finite, got {value!r}")
        elif k == 0 and item:
            voice = item
        else:
            raise ValueError(f"line {line_no}: expected key=value after the voice for {name!r}, got {item!r}")
    try:
        return name, CastMember(voice, **settings)
    except ValueError as e:
        raise ValueError(f"line {line_no}: {name!r}: {e}") from None


def voice_gender(voice: str) -> str | None:
    """'m' or 'f' when the name encodes it (e.g. jm_kumo, af_heart; a blend when all its voices agree), else None."""
    genders = set()
    for part in voice.split("+"):
        low = part.partition(":")[0].strip().lower()
        genders.add("m" if low.startswith(_MALE_PREFIXES) else "f" if low.startswith(_FEMALE_PREFIXES) else None)
    return genders.pop() if len(genders) == 1 else None


def _voice_parts(voice: str) -> list[str]:
    """The registered voice names a cast voice uses: a name, the names in a blend; none for a .voice file path."""
    names = [part.partition(":")[0].strip() for part in voice.split("+")]
    return [n for n in names if not (n.lower().endswith(".voice") or "/" in n)]


def _cast_pool(voices: list[str], cast_from: Sequence[str] | None) -> list[str]:
    """The voices automatic casting draws on: those of `cast_from` among `voices`, in `cast_from`'s order (all of
    `voices` if `cast_from` is None or none of them is available)."""
    if cast_from is None:
        return voices
    return [v for v in dict.fromkeys(cast_from) if v in voices] or voices


def cast_voices(speakers: Iterable[str], available_voices: Sequence[str],
                explicit: Mapping[str, str] | None = None, cast_from: Sequence[str] | None = None) -> dict[str, str]:
    """Deterministically give every speaker a voice.

    Explicit choices come first (any of `available_voices`). Each other speaker (in the given order) gets the first
    unused voice of `cast_from` (default, or if none of them is available: `available_voices`), in its order,
    preferring the opposite gender of the previous speaker's voice (for contrast, when names encode gender, e.g.
    jf_/jm_) and the language prefix of the explicit voices. Voices are
    reused (least used first) only when speakers outnumber voices. ValueError names an unknown speaker or
    voice in `explicit` and lists the known ones.
    """
    speakers = list(dict.fromkeys(speakers))
    voices = list(dict.fromkeys(available_voices))
    explicit = dict(explicit or {})
    for name, voice in explicit.items():
        if name not in speakers:
            raise ValueError(f"unknown speaker {name!r} in cast; speakers are: {', '.join(speakers) or '(none)'}")
        unknown = [part for part in _voice_parts(voice) if part not in voices]
        if unknown:
            raise ValueError(f"unknown voice {unknown[0]!r} for {name!r}; available voices: {', '.join(voices) or '(none)'}")
    voices = _cast_pool(voices, cast_from)
    if not voices and len(explicit) < len(speakers):
        raise ValueError("no voices available to cast speakers: " + ", ".join(s for s in speakers if s not in explicit))
    languages = {v[0] for v in explicit.values() if "_" in v}
    uses = {v: 0 for v in voices}
    for v in explicit.values():
        uses[v] = uses.get(v, 0) + 1
    out: dict[str, str] = {}
    previous: str | None = None
    for name in speakers:
        if name in explicit:
            out[name] = previous = explicit[name]
            continue
        want = {"m": "f", "f": "m"}.get(voice_gender(previous) if previous else None)

        def rank(v: str, _want=want) -> tuple:
            return (
                uses[v],  # unused first, then least used
                bool(languages) and v[0] not in languages,  # same language as the explicit voices
                _want is not None and voice_gender(v) != _want,  # contrast with the previous speaker
                voices.index(v),  # then the given order
            )

        out[name] = previous = min(voices, key=rank)
        uses[previous] += 1
    return out


VARIANT_PITCHES = (-3.0, 3.0)
"""Semitones by which automatic casting shifts a voice (or blend) it has to give a second speaker."""


def voice_variants(voices: Sequence[str]) -> list[tuple[str, float]]:
    """Distinct (voice, pitch) pairs to cast from, in order of preference: every voice as it is; then 1:1 blends
    of two voices of the same gender (`a+b`, new timbres between the two); then each voice and blend shifted by
    VARIANT_PITCHES. Five voices give 5 + 6 blends + 22 shifted = 33 speakers before any pair repeats."""
    voices = list(dict.fromkeys(voices))
    plain = [(v, 0.0) for v in voices]
    blends = [(f"{a}+{b}", 0.0) for i, a in enumerate(voices) for b in voices[i + 1 :]
              if voice_gender(a) is not None and voice_gender(a) == voice_gender(b)]
    shifted = [(v, p) for p in VARIANT_PITCHES for v, _ in plain + blends]
    return plain + blends + shifted


def cast_speakers(speakers: Iterable[str], available_voices: Sequence[str],
                  explicit: Mapping[str, str] | None = None,
                  cast_from: Sequence[str] | None = None) -> dict[str, tuple[str, float]]:
    """Like `cast_voices`, but speakers beyond the number of voices get new voices instead of repeats: blends of
    two voices of the same gender, then voices and blends shifted in pitch (`voice_variants`), so that no two
    speakers sound alike while distinct variants remain. -> {speaker: (voice, pitch in semitones)}.

    Deterministic; the first len(voices cast from) speakers are cast exactly as `cast_voices` casts them.
    `cast_from` (default: `available_voices`) are the voices automatic casting draws on.
    """
    speakers = list(dict.fromkeys(speakers))
    explicit = dict(explicit or {})
    base = cast_voices(speakers, available_voices, explicit, cast_from)  # validates; plain voices while unused remain
    voices = _cast_pool(list(dict.fromkeys(available_voices)), cast_from)
    out: dict[str, tuple[str, float]] = {}
    taken: set[tuple[str, float]] = set()
    variants = voice_variants(voices)
    previous: str | None = None
    for name in speakers:
        voice = base[name]
        if name in explicit or (voice, 0.0) not in taken:
            out[name] = (voice, 0.0)
        else:  # the plain voice is taken: the first free variant, preferring contrast with the previous speaker
            want = {"m": "f", "f": "m"}.get(voice_gender(previous) if previous else None)
            free = [v for v in variants if v not in taken] or variants
            out[name] = min(free, key=lambda v: (want is not None and voice_gender(v[0]) != want, free.index(v)))
        taken.add(out[name])
        previous = out[name][0]
    return out
