"""The script formats and casting (voicegen.podcast.script)."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicegen.podcast.script import CastMember, Pause, Script, Turn, cast_voices

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "episode.txt"
JA_VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]

BASIC = """\
---
Host: jf_alpha, speed=1.05, pan=-0.3
Guest: jm_kumo
---
# a comment
Host: Welcome back to the show! [pause 1.5s] Today we talk about...
   voices, and how they are made.
Guest: Thanks for having me.

\\Note: this paragraph is a new turn by the same speaker.
"""


def test_parse_basic_script():
    s = Script.parse(BASIC)
    assert s.speakers == ["Host", "Guest"]
    assert s.cast == {"Host": CastMember("jf_alpha", 1.05, -0.3), "Guest": CastMember("jm_kumo")}
    assert [t.speaker for t in s.turns] == ["Host", "Guest", "Guest"]
    assert s.turns[0].text == ("Welcome back to the show! [pause 1.5s] Today we talk about... "
                               "voices, and how they are made.")
    assert list(s.turns[0].pieces) == ["Welcome back to the show!", Pause(1.5),
                                   "Today we talk about... voices, and how they are made."]
    assert s.turns[0].spoken_text == "Welcome back to the show! Today we talk about... voices, and how they are made."
    assert s.turns[2].text == "Note: this paragraph is a new turn by the same speaker."
    assert s.stereo and s.member("Guest").pan is None


def test_round_trips():
    s = Script.parse(BASIC)
    assert Script.parse(s.to_text()) == s
    assert Script.from_json(s.to_json()) == s
    assert Script.from_json(json.loads(s.to_json())) == s


def test_pause_directives():
    t = Turn("A", "[pause] one [PAUSE 500ms] two [pause 2 s][pause .25s] three [pause 3]")
    assert list(t.pieces) == [Pause(0.5), "one", Pause(0.5), "two", Pause(2.0), Pause(0.25), "three", Pause(3.0)]
    assert list(Turn("A", "no directives [laughs]").pieces) == ["no directives [laughs]"]
    for bad in ("[pause soon]", "[pause -1s]", "[pause 2 minutes]", "[pause 90s]"):
        with pytest.raises(ValueError, match="pause"):
            Turn("A", f"hi {bad}")


def test_no_header_full_width_colon_and_multiword_names():
    s = Script.parse("Dr. Sato: Hello.\nホスト：こんにちは。\nMary Ann: Hi!\nDr. Sato: Bye. Time: 10:30.\n")
    assert s.speakers == ["Dr. Sato", "ホスト", "Mary Ann"]
    assert s.turns[1].text == "こんにちは。" and s.cast == {}
    assert s.turns[3].text == "Bye. Time: 10:30."
    assert Script.parse(s.to_text()) == s


@pytest.mark.parametrize("text, message", [
    ("Just text.\n", r"line 1: text before the first speaker"),
    ("---\nHost: jf_alpha\n", r"line \d: cast header is not closed"),
    ("---\nHost: jf_alpha\nHost: hi.\n", r"line 1: cast header is not closed"),  # not "cast twice"
    ("---\nHost: jf_alpha\n---\nGuest: hi\n", r"line 4: speaker 'Guest' is not in the cast \(Host\)"),
    ("---\nHost: jf_alpha\nGuest: jm_kumo\n---\nHost: hi\n", r"line 3: cast names speaker 'Guest' who has no turn"),
    ("---\nHost: jf_alpha, tempo=2\n---\nHost: hi\n", r"line 2: unknown setting 'tempo'"),
    ("---\nHost: jf_alpha, speed=fast\n---\nHost: hi\n", r"line 2: speed for 'Host' must be a number"),
    ("---\nHost: jf_alpha, pan=2\n---\nHost: hi\n", r"line 2: 'Host': pan must be"),
    ("---\nHost: a\nHost: b\n---\nHost: hi\n", r"line 3: speaker 'Host' is cast twice"),
    ("Host: hi\n\nGuest:\n\nHost: bye\n", r"line 3: empty turn for speaker 'Guest'"),
    ("Host: one\nand [pause x] two\n", r"line 1: bad pause directive"),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        Script.parse(text)


def test_a_byte_order_mark_is_not_text():
    assert Script.parse("\ufeffHost: Hi.") == Script.from_str("\ufeffHost: Hi.") == Script.parse("Host: Hi.")
    assert Script.from_str('\ufeff[{"speaker": "A", "text": "Hi."}]') == Script.parse("A: Hi.")


def test_from_str_reads_either_form_and_json_by_name():
    json_text = '  [{"speaker": "A", "text": "Hi."}]'
    assert Script.from_str(json_text) == Script.from_json(json_text) == Script.parse("A: Hi.")
    assert Script.from_str("A: Hi.") == Script.parse("A: Hi.")
    with pytest.raises(ValueError, match="invalid JSON"):  # a .json file that is not JSON: JSON's error
        Script.from_str('"turns": []}', as_json=True)


def test_json_forms_and_errors():
    s = Script.from_json('[{"speaker": "A", "text": "Hi."}, {"speaker": "B", "text": "Hello."}]')
    assert s.speakers == ["A", "B"] and s.cast == {}
    s2 = Script.from_json({"cast": {"A": "jf_alpha", "B": {"voice": "jm_kumo", "pan": 0.5}},
                           "turns": [{"speaker": "A", "text": "Hi."}, {"speaker": "B", "text": "Hello."}]})
    assert s2.cast["A"] == CastMember("jf_alpha") and s2.cast["B"].pan == 0.5
    for data, message in [
        ('{"turns": [{"speaker": "A"}]}', r"turns\[0\]: needs both"),
        ('[{"speaker": "A", "text": "x", "mood": "happy"}]', r"turns\[0\]: unknown key\(s\) 'mood'"),
        ('[{"speaker": "A", "text": "x"}, {"speaker": "", "text": "y"}]', r"turns\[1\]: bad speaker name"),
        ('{"cast": {"A": {"voice": "jf_alpha", "speed": "1"}}, "turns": [{"speaker": "A", "text": "x"}]}',
         r"cast\['A'\]: speed must be"),
        ('{"cast": {"Z": "jf_alpha"}, "turns": [{"speaker": "A", "text": "x"}]}', r"speaker 'Z' who has no turn"),
        ("{not json", "invalid JSON"),
        ("42", "must be a list of turns or an object"),
    ]:
        with pytest.raises(ValueError, match=message):
            Script.from_json(data)


def test_cast_voices_explicit_first_then_alternating_unused_voices():
    speakers = ["Host", "Guest", "Third", "Fourth"]
    cast = cast_voices(speakers, JA_VOICES, {"Guest": "jf_tebukuro"})
    assert cast["Guest"] == "jf_tebukuro"
    assert cast["Host"] == "jf_alpha"  # first in the given order
    assert cast["Third"] == "jm_kumo"  # contrast with the previous (female) speaker
    assert cast["Fourth"] == "jf_gongitsune"  # no unused male voice left: next unused one
    assert len(set(cast.values())) == 4  # no reuse while voices remain
    assert cast_voices(speakers, JA_VOICES, {"Guest": "jf_tebukuro"}) == cast  # deterministic
    alternating = cast_voices(["A", "B", "C"], ["af_heart", "af_bella", "am_adam", "am_michael"])
    assert alternating == {"A": "af_heart", "B": "am_adam", "C": "af_bella"}


def test_cast_voices_reuses_only_when_needed_and_prefers_the_explicit_language():
    cast = cast_voices(list("ABCDEFG"), JA_VOICES)
    assert sorted(set(cast.values())) == sorted(JA_VOICES)
    counts = [list(cast.values()).count(v) for v in JA_VOICES]
    assert max(counts) - min(counts) <= 1
    mixed = cast_voices(["A", "B"], ["af_heart", "am_adam", "jf_alpha", "jm_kumo"], {"A": "jf_alpha"})
    assert mixed["B"] == "jm_kumo"


def test_cast_voices_errors_name_the_bad_item_and_list_known_ones():
    with pytest.raises(ValueError, match=r"unknown speaker 'Hots' in cast; speakers are: Host, Guest"):
        cast_voices(["Host", "Guest"], JA_VOICES, {"Hots": "jf_alpha"})
    with pytest.raises(ValueError, match=r"unknown voice 'jf_alhpa' for 'Host'; available voices: jf_alpha, "):
        cast_voices(["Host"], JA_VOICES, {"Host": "jf_alhpa"})
    with pytest.raises(ValueError, match="no voices available"):
        cast_voices(["Host"], [])


def test_example_episode():
    s = Script.parse(EXAMPLE.read_text(encoding="utf-8"))
    assert s.speakers == ["Host", "Mika", "Kenji"]
    assert s.voices(JA_VOICES) == {"Host": "jf_alpha", "Mika": "jf_tebukuro", "Kenji": "jm_kumo"}
    words = sum(len(t.spoken_text.split()) for t in s.turns)
    assert 250 <= words <= 360  # about two minutes of speech
    assert any(isinstance(p, Pause) for t in s.turns for p in t.pieces)
    assert any(t.spoken_text.endswith("?") for t in s.turns)
    assert Script.parse(s.to_text()) == s


# ---- property tests ---------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("HostGue: \n-[]pause1.5ms,=#\\：x?") + ["---\n", "Host: ", "[pause ", "speed="]),
               max_size=80).map("".join) | st.text(max_size=200))
def test_arbitrary_text_raises_only_value_error(text):
    try:
        s = Script.parse(text)
    except ValueError:
        return
    assert Script.parse(s.to_text()) == s


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100) | st.binary(max_size=50))
def test_arbitrary_json_raises_only_value_error(data):
    try:
        Script.from_json(data)
    except ValueError:
        pass


name_words = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Lo")), min_size=1, max_size=8)
names = st.lists(name_words, min_size=1, max_size=3).map(" ".join)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)
pauses = st.floats(0, 60, allow_nan=False).map(lambda s: f" [pause {s:.3f}s] ")


@st.composite
def scripts(draw):
    speakers = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    turns = []
    for _ in range(draw(st.integers(1, 8))):
        text = draw(texts) + draw(st.sampled_from(["", ""]) | pauses) + draw(texts)
        try:
            turns.append(Turn(draw(st.sampled_from(speakers)), text))
        except ValueError:
            continue  # e.g. whitespace only or a malformed directive
    if not turns:
        turns = [Turn(speakers[0], "hello")]
    used = list(dict.fromkeys(t.speaker for t in turns))
    cast = {}
    for name in used:
        if draw(st.booleans()):
            cast[name] = CastMember(draw(st.none() | st.sampled_from(JA_VOICES)),
                                    draw(st.sampled_from([1.0, 0.8, 1.25])),
                                    draw(st.none() | st.floats(-1, 1, allow_nan=False)))
    return Script(tuple(turns), cast)


@settings(max_examples=200, deadline=None)
@given(scripts())
def test_generated_scripts_round_trip(script):
    assert Script.parse(script.to_text()) == script
    assert Script.from_json(script.to_json()) == script
