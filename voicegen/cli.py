"""Command line: `voicegen say`, `voicegen voices`, `voicegen podcast`, `voicegen serve` (also `python -m voicegen`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .engine import DEFAULT_VOICE
from .text.phonemize import ALPHABETS


def _read_text(args: argparse.Namespace) -> str:
    if args.file:
        return Path(args.file).read_text(encoding="utf-8")
    if args.text is None or args.text == "-":
        if sys.stdin is None or (args.text is None and sys.stdin.isatty()):
            raise ValueError("no text: give it as an argument, with --file PATH, or on standard input")
        return sys.stdin.read()
    return args.text


def _lexicon(path: str | None) -> dict[str, str] | None:
    """A lexicon file: one `word phonemes` pair per line (tab or spaces); `#` starts a comment."""
    if not path:
        return None
    out = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'word phonemes', got {line!r}")
        out[parts[0]] = parts[1].strip()
    return out


def _engine(args: argparse.Namespace):
    from .engine import Engine

    return Engine(
        None,
        args.device,
        lexicon=_lexicon(getattr(args, "lexicon", None)),
        alphabet=args.alphabet,
        voices=args.voice_file or None,
    )


def cmd_say(args: argparse.Namespace) -> int:
    from .audio import audio_format

    audio_format(args.output)  # refuse a bad output name before the work, not after
    text = _read_text(args)
    engine = _engine(args)
    audio = engine.synthesize(text, voice=args.voice, speed=args.speed, seed=args.seed)
    path = audio.save(args.output)
    print(f"wrote {path} ({audio.duration:.2f} s, {len(audio.segments)} sentences)", file=sys.stderr)
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    from .api import voices

    for name in voices():
        print(name)
    return 0


def cmd_podcast(args: argparse.Namespace) -> int:
    from .podcast.render import render_episode

    cast = {}
    for item in args.cast or []:
        speaker, sep, voice = item.partition("=")
        if not sep or not speaker.strip() or not voice.strip():
            raise ValueError(f"--cast takes SPEAKER=VOICE; got {item!r}")
        cast[speaker.strip()] = voice.strip()
    from .audio import audio_format

    audio_format(args.output)
    text = Path(args.script).read_text(encoding="utf-8")
    engine = _engine(args)
    result = render_episode(
        engine,
        text,
        args.output,
        voices=cast or None,
        seed=args.seed,
        srt=args.srt,
        vtt=args.vtt,
        transcript=args.transcript,
        stereo=args.stereo,
        progress=not args.quiet,
    )
    print(f"wrote {args.output} ({result.duration:.1f} s, {len(result.segments)} turns)", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise RuntimeError(f"voicegen serve needs the server extra ({e.name} is missing): "
                           "pip install 'voicegen[server]' (from a checkout: pip install -e \".[server]\")") from None
    from .server import ServerConfig, serve
    from .server.voices import parse_voice_map

    config = ServerConfig(
        device=args.device,
        api_key=args.api_key or os.environ.get("VOICEGEN_API_KEY") or None,
        voice_files=tuple(args.voice_file or ()),
        voice_map=parse_voice_map(args.voice_map or []),
        lexicon=_lexicon(args.lexicon),
        alphabet=args.alphabet,
        compile=args.compile,
        max_input_chars=args.max_input_chars,
        max_queue=args.max_queue,
        max_turn_items=args.max_turn_items,
        timeout=args.timeout,
    )
    serve(config, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicegen", description="Fast multi-speaker text-to-speech.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
        p.add_argument("--seed", type=int, default=None, help="make the output reproducible")
        p.add_argument("--voice-file", action="append", help="extra voices (.npy/.npz/.pt); repeatable")
        p.add_argument("--alphabet", choices=ALPHABETS, default=None,
                       help="phoneme alphabet: espeak (default, clearest for the built-in voices) or misaki")

    say = sub.add_parser("say", help="speak text into an audio file")
    say.add_argument("text", nargs="?", help="the text ('-' or nothing: read standard input)")
    say.add_argument("-o", "--output", required=True, help="output file: .wav, .flac, .ogg, .opus or .mp3")
    say.add_argument("-f", "--file", help="read the text from this file")
    say.add_argument("--voice", default=DEFAULT_VOICE, help=f"voice name or blend such as 'jf_alpha+jf_nezumi' (default {DEFAULT_VOICE})")
    say.add_argument("--speed", type=float, default=1.0, help="0.25 to 4.0 (default 1.0)")
    say.add_argument("--lexicon", help="file of 'word phonemes' lines overriding pronunciations")
    common(say)
    say.set_defaults(run=cmd_say)

    voices = sub.add_parser("voices", help="list the built-in voices")
    voices.set_defaults(run=cmd_voices)

    pod = sub.add_parser("podcast", help="render a multi-speaker script into an episode")
    pod.add_argument("script", help="script file (text format, or .json)")
    pod.add_argument("-o", "--output", required=True, help="episode file: .wav, .flac, .ogg, .opus or .mp3")
    pod.add_argument("--cast", action="append", metavar="SPEAKER=VOICE", help="assign a voice; repeatable")
    pod.add_argument("--srt", help="also write SRT subtitles here")
    pod.add_argument("--vtt", help="also write WebVTT subtitles here")
    pod.add_argument("--transcript", help="also write a JSON transcript with word timings here")
    pod.add_argument("--stereo", action="store_true", help="place speakers in stereo (pan from the cast header)")
    pod.add_argument("--lexicon", help="file of 'word phonemes' lines overriding pronunciations")
    pod.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common(pod)
    pod.set_defaults(run=cmd_podcast)

    srv = sub.add_parser("serve", help="run an OpenAI-compatible speech server (needs the server extra)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8880, help="port (default 8880)")
    srv.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    srv.add_argument("--api-key", default=None,
                     help="require 'Authorization: Bearer KEY' on every request (default: $VOICEGEN_API_KEY if set)")
    srv.add_argument("--voice-file", action="append", help="extra voices (.npy/.npz/.pt); repeatable")
    srv.add_argument("--voice-map", action="append", metavar="NAME=VOICE",
                     help="map a voice name (e.g. OpenAI's alloy) to a voice or blend; repeatable")
    srv.add_argument("--lexicon", help="file of 'word phonemes' lines overriding pronunciations")
    srv.add_argument("--alphabet", choices=ALPHABETS, default=None, help="phoneme alphabet (default espeak)")
    srv.add_argument("--compile", action="store_true", help="torch.compile the frame phase (slower start)")
    srv.add_argument("--max-input-chars", type=int, default=4096, help="longest input per request (default 4096, as OpenAI); longer: 413")
    srv.add_argument("--max-queue", type=int, default=None,
                     help="most sentences queued or rendering across clients (default 128 on the CPU, 2048 on CUDA); beyond: 429")
    srv.add_argument("--max-turn-items", type=int, default=None,
                     help="most sentences per batching turn (default 4 on the CPU, 256 on CUDA)")
    srv.add_argument("--timeout", type=float, default=300.0, help="seconds a request may take (default 300); then 504")
    srv.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    srv.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("voicegen: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"voicegen: error: {exc}", file=sys.stderr)
        return 2
