"""Request bodies, parsed and checked by hand so that every mistake gets OpenAI's error shape and a message that
says what was wrong and what is accepted (FastAPI's own validation would answer 422 in another shape).

`POST /v1/audio/speech` takes OpenAI's fields with OpenAI's defaults and limits:

| field | default | accepted |
|---|---|---|
| model | required | an id from `GET /v1/models` (tts-1, tts-1-hd, gpt-4o-mini-tts, voicegen, kokoro, ...) |
| input | required | 1 to `max_input_chars` characters (4096, OpenAI's limit; longer: 413) |
| voice | required | OpenAI's names, ours, blends (`jf_alpha+jm_kumo`), or `{"id": name}` |
| response_format | mp3 | mp3, opus, aac, flac, wav, pcm |
| speed | 1.0 | 0.25 to 4.0 |
| pitch | 0 | semitones added to the voice's own pitch, -12 to 12 (a voicegen extension; OpenAI has none) |
| stream_format | audio | audio (the file's bytes), sse (`speech.audio.delta` events with base64 audio, then `speech.audio.done` whose usage counts phoneme tokens in and 40 Hz frames out) |
| instructions | none | accepted and ignored (the built-in voices take no instructions) |

and three of ours: `pitch` (above), `stream` (default true: bytes leave as each sentence is rendered; false: one
complete file with exact headers and a Content-Length) and `seed` (an integer makes the audio reproducible). Any
other field is refused, as OpenAI refuses unrecognized arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..checks import is_number_in
from ..constants import PITCH_RANGE, SPEED_RANGE
from .encode import check_format
from .errors import ApiError, bad_request

MAX_INPUT_CHARS = 4096
"""OpenAI's limit on `input`; longer input is refused with 413 (the server's `--max-input-chars` changes it)."""

MODELS = ("voicegen", "kokoro", "tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")
"""Model ids the server answers to (all the same network): ours, Kokoro-FastAPI's and OpenAI's speech models."""

STREAM_FORMATS = ("audio", "sse")

SPEECH_FIELDS = {"model", "input", "voice", "response_format", "speed", "pitch", "stream_format", "instructions",
                 "stream", "seed"}


def parse_json(body: bytes) -> dict:
    """The request body as a JSON object; 400 in OpenAI's words when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "We could not parse the JSON body of your request. The body must be a JSON object "
                       "sent with Content-Type: application/json.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the request body must be a JSON object; got {type(data).__name__}", code="invalid_json")
    return data


def _unknown_fields(data: dict, allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise bad_request(f"Unrecognized request argument supplied: {extra[0]}; accepted: {', '.join(sorted(allowed))}",
                          extra[0], "unknown_parameter")


def _required(data: dict, name: str):
    if name not in data or data[name] is None:
        raise bad_request(f"you must provide the '{name}' parameter", name, "missing_required_parameter")
    return data[name]


def _optional(data: dict, name: str, default):
    """An optional field's value: `default` when the field is absent or null (as OpenAI's clients send an unset
    parameter)."""
    value = data.get(name)
    return default if value is None else value


def _string(data: dict, name: str, default=None) -> str | None:
    value = _optional(data, name, default)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string; got {json.dumps(value)[:40]}", name, "invalid_type")
    return value


def check_model(model) -> str:
    if not isinstance(model, str):
        raise bad_request(f"'model' must be a string; got {json.dumps(model)[:40]}", "model", "invalid_type")
    if model not in MODELS:
        raise ApiError(404, f"The model `{model}` does not exist; this server offers: {', '.join(MODELS)}",
                       param="model", code="model_not_found")
    return model


def check_speed(value) -> float:
    lo, hi = SPEED_RANGE
    if not is_number_in(value, SPEED_RANGE):
        raise bad_request(f"'speed' must be a number from {lo} to {hi} (1.0 is normal); got {json.dumps(value)[:40]}",
                          "speed")
    return float(value)


def check_pitch(value) -> float:
    lo, hi = PITCH_RANGE
    if not is_number_in(value, PITCH_RANGE):
        raise bad_request(f"'pitch' must be a number of semitones from {lo:g} to {hi:g} (0 is the voice's own); got "
                          f"{json.dumps(value)[:40]}", "pitch")
    return float(value)


def check_seed(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'seed' must be an integer or null; got {json.dumps(value)[:40]}", "seed", "invalid_type")
    return value


def check_input(text, max_chars: int, name: str = "input") -> str:
    if not isinstance(text, str):
        raise bad_request(f"'{name}' must be a string; got {json.dumps(text)[:40]}", name, "invalid_type")
    if not text.strip():
        raise bad_request(f"'{name}' is empty; give the text to speak (1 to {max_chars} characters)", name,
                          "string_too_short")
    if len(text) > max_chars:
        raise ApiError(413, f"'{name}' is {len(text)} characters; this server takes at most {max_chars} per request "
                       "(split longer text into several requests)", param=name, code="string_above_max_length")
    return text


@dataclass(frozen=True)
class SpeechParams:
    """A checked `POST /v1/audio/speech` body (voice still as the client named it; the voice map resolves it)."""

    model: str
    input: str
    voice: str
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: str = "audio"
    stream: bool = True
    seed: int | None = None
    pitch: float = 0.0

    @classmethod
    def from_json(cls, data: dict, max_input_chars: int = MAX_INPUT_CHARS) -> SpeechParams:
        """Check every field (400, 404 for an unknown model, 413 for input over `max_input_chars`)."""
        _unknown_fields(data, SPEECH_FIELDS)
        model = check_model(_required(data, "model"))
        text = check_input(_required(data, "input"), max_input_chars)
        voice = _required(data, "voice")
        if isinstance(voice, dict) and set(voice) == {"id"}:  # OpenAI's custom voice object {"id": ...}
            voice = voice["id"]
        if not isinstance(voice, str) or not voice.strip():
            raise bad_request(f"'voice' must be a voice name (or {{\"id\": name}}); got {json.dumps(voice)[:40]}", "voice")
        fmt = _string(data, "response_format", "mp3")
        check_format(fmt)
        speed = check_speed(_optional(data, "speed", 1.0))
        stream_format = _string(data, "stream_format", "audio")
        if stream_format not in STREAM_FORMATS:
            raise bad_request(f"'stream_format' must be one of {', '.join(STREAM_FORMATS)}; got {json.dumps(stream_format)}",
                              "stream_format")
        _string(data, "instructions")
        stream = _optional(data, "stream", True)
        if not isinstance(stream, bool):
            raise bad_request(f"'stream' must be true or false; got {json.dumps(stream)[:40]}", "stream", "invalid_type")
        return cls(model, text, voice.strip(), fmt, speed, stream_format, stream, check_seed(data.get("seed")),
                   check_pitch(_optional(data, "pitch", 0.0)))


PODCAST_FIELDS = {"script", "cast", "response_format", "speed", "seed", "stereo", "model"}

MAX_SCRIPT_CHARS = 20000
"""Default limit on a podcast script's characters (about 20 minutes of speech); longer scripts get 413."""


@dataclass(frozen=True)
class PodcastParams:
    """A checked `POST /v1/audio/podcast` body.

    script: the text form ("Speaker: text" turns, optional cast header) or the JSON form (a list of turns or
    {"cast", "turns"}); cast: {speaker: voice} overriding the script's header; stereo: place speakers by their
    pan (default: stereo when the cast pans anyone).
    """

    script: str
    cast: dict[str, str]
    response_format: str = "mp3"
    speed: float = 1.0
    seed: int | None = None
    stereo: bool | None = None

    @classmethod
    def from_json(cls, data: dict, max_script_chars: int = MAX_SCRIPT_CHARS) -> PodcastParams:
        _unknown_fields(data, PODCAST_FIELDS)
        if "model" in data:
            check_model(data["model"])
        script = _required(data, "script")
        if isinstance(script, (list, dict)):
            script = json.dumps(script)
        script = check_input(script, max_script_chars, "script")
        cast = data.get("cast") or {}
        if not isinstance(cast, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in cast.items()):
            raise bad_request("'cast' must be an object of speaker names to voice names, e.g. "
                              '{"Host": "nova", "Guest": "jm_kumo"}', "cast", "invalid_type")
        fmt = _string(data, "response_format", "mp3")
        check_format(fmt)
        stereo = data.get("stereo")
        if stereo is not None and not isinstance(stereo, bool):
            raise bad_request(f"'stereo' must be true, false or null; got {json.dumps(stereo)[:40]}", "stereo", "invalid_type")
        return cls(script, dict(cast), fmt, check_speed(_optional(data, "speed", 1.0)), check_seed(data.get("seed")), stereo)
