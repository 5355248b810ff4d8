"""Command line: `voicegen say`, `voicegen voices`, `voicegen voice fit|blend|show`, `voicegen podcast` (also
`python -m voicegen`)."""

from __future__ import annotations

import argparse
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
    audio = engine.synthesize(text, voice=args.voice, speed=args.speed, seed=args.seed, pitch=args.pitch)
    path = audio.save(args.output)
    print(f"wrote {path} ({audio.duration:.2f} s, {len(audio.segments)} sentences)", file=sys.stderr)
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    """One voice name per line (built-in, then the user's); --long adds what each is and its defaults."""
    from .weights import VoiceBank

    bank = VoiceBank()
    for name in bank.builtin_names:
        print(f"{name}\tbuilt-in\tpitch 0\tspeed 1" if args.long else name)
    for name, path in sorted(bank.user_files.items()):
        if not args.long:
            print(name)
            continue
        try:
            voice = bank.voice(name)
            method = voice.provenance.get("method", "?")
            print(f"{name}\tuser ({method})\tpitch {voice.pitch:g}\tspeed {voice.speed:g}\t{path}")
        except ValueError as e:  # a broken file is listed, with why, rather than hiding the others
            print(f"{name}\tunreadable: {e}")
    return 0


def _write_voice(voice, output: str | None, overwrite: bool) -> str:
    """Save to `output`, or into the user's voice folder under the voice's name -> where it went."""
    from .weights import install_voice

    if output:
        if not output.lower().endswith(".voice"):
            raise ValueError(f"voice files end in .voice; got {output!r}")
        if Path(output).exists() and not overwrite:
            raise ValueError(f"{output} exists; pass --force to replace it")
        return str(voice.save(output))
    return str(install_voice(voice, overwrite=overwrite))


def _voice_name(args: argparse.Namespace, fallback: str) -> str:
    import re

    if args.name:
        return args.name
    stem = Path(args.output).stem if args.output else fallback
    return re.sub(r"[^\w.\-]", "_", stem).lstrip("_.-") or "voice"


def cmd_voice_fit(args: argparse.Namespace) -> int:
    import soundfile as sf

    from .fit import fit_voice

    if not args.output and not args.name:
        raise ValueError("say where the voice goes: -o NAME.voice, or --name NAME to keep it in your voices")
    text = Path(args.text_file).read_text(encoding="utf-8") if args.text_file else args.text
    try:
        audio, rate = sf.read(args.recording, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ValueError(f"cannot read {args.recording}: {e}") from None
    from .engine import Engine

    engine = Engine(None, args.device)
    bar = _progress_bar() if not args.quiet else None
    voice = fit_voice(audio, rate, text, name=_voice_name(args, Path(args.recording).stem), start=args.start,
                      steps=args.steps, engine=engine, seed=args.seed or 0, progress=bar)
    if bar is not None:
        bar.done()
    where = _write_voice(voice, args.output, args.force)
    info = voice.provenance
    print(f"wrote {where} (from {info['start']}, {info['steps']} steps, loss {info['loss'][0]:.3f} -> "
          f"{info['loss'][-1]:.3f}, pitch {voice.pitch:g}, speed {voice.speed:g}, {info['seconds']:.0f} s)", file=sys.stderr)
    return 0


def _progress_bar(stream=None):
    import time

    stream = stream or sys.stderr
    started = time.monotonic()

    def show(step: int, steps: int, loss: float) -> None:
        width = 30
        filled = int(width * step / max(steps, 1))
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] step {step}/{steps} loss {loss:.4f} "
                     f"{time.monotonic() - started:.0f} s")
        stream.flush()

    def done() -> None:
        stream.write("\n")

    show.done = done
    return show


def cmd_voice_blend(args: argparse.Namespace) -> int:
    from .weights import Voice, VoiceBank

    bank = VoiceBank()
    mixed = bank.voice(args.spec)
    voice = Voice(_voice_name(args, mixed.name), mixed.table, args.pitch if args.pitch is not None else mixed.pitch,
                  args.speed if args.speed is not None else mixed.speed, {"method": "blend", "spec": args.spec})
    where = _write_voice(voice, args.output, args.force)
    print(f"wrote {where} ({args.spec}, pitch {voice.pitch:g}, speed {voice.speed:g})", file=sys.stderr)
    return 0


def cmd_voice_show(args: argparse.Namespace) -> int:
    import json

    from .weights import VoiceBank

    voice = VoiceBank().voice(args.voice)
    print(json.dumps({"name": voice.name, "pitch": voice.pitch, "speed": voice.speed,
                      "provenance": voice.provenance}, indent=2, ensure_ascii=False))
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
        pitch=args.pitch,
        srt=args.srt,
        vtt=args.vtt,
        transcript=args.transcript,
        stereo=args.stereo,
        progress=not args.quiet,
    )
    print(f"wrote {args.output} ({result.duration:.1f} s, {len(result.segments)} turns)", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicegen", description="Fast multi-speaker text-to-speech.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
        p.add_argument("--seed", type=int, default=None, help="make the output reproducible")
        p.add_argument("--voice-file", action="append", help="extra voices (.voice/.npy/.npz/.pt); repeatable")
        p.add_argument("--alphabet", choices=ALPHABETS, default=None,
                       help="phoneme alphabet: espeak (default, clearest for the built-in voices) or misaki")

    say = sub.add_parser("say", help="speak text into an audio file")
    say.add_argument("text", nargs="?", help="the text ('-' or nothing: read standard input)")
    say.add_argument("-o", "--output", required=True, help="output file: .wav, .flac, .ogg, .opus or .mp3")
    say.add_argument("-f", "--file", help="read the text from this file")
    say.add_argument("--voice", default=DEFAULT_VOICE, help=f"voice name, .voice file or blend such as 'jf_alpha+jf_nezumi' (default {DEFAULT_VOICE})")
    say.add_argument("--speed", type=float, default=1.0, help="0.25 to 4.0 (default 1.0)")
    say.add_argument("--pitch", type=float, default=0.0, help="semitones, -12 to 12 (default 0)")
    say.add_argument("--lexicon", help="file of 'word phonemes' lines overriding pronunciations")
    common(say)
    say.set_defaults(run=cmd_say)

    voices = sub.add_parser("voices", help="list the voices: built-in, then yours (one name per line)")
    voices.add_argument("-l", "--long", action="store_true", help="also say what each voice is, its pitch and speed")
    voices.set_defaults(run=cmd_voices)

    voice = sub.add_parser("voice", help="make voices: fit one to a recording, blend, show")
    vsub = voice.add_subparsers(dest="voice_command", required=True)
    fit = vsub.add_parser("fit", help="fit a voice to a recording of known text")
    fit.add_argument("recording", help="audio file (any rate, mono or stereo; 5-60 s of clear speech)")
    fit.add_argument("--text", help="what is said in the recording (default: transcribed by Whisper, if installed)")
    fit.add_argument("--text-file", help="read what is said from this file")
    fit.add_argument("-o", "--output", help="write the voice here (NAME.voice); default: your voices, as --name")
    fit.add_argument("--name", help="the voice's name (default: the output file's name)")
    fit.add_argument("--start", help="voice to start from (default: the nearest built-in voice)")
    fit.add_argument("--steps", type=int, default=40, help="at most this many steps (default 40; stops early)")
    fit.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    fit.add_argument("--seed", type=int, default=None, help="seed of the source noise used while fitting")
    fit.add_argument("--force", action="store_true", help="replace an existing voice file")
    fit.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(run=cmd_voice_fit)
    blend = vsub.add_parser("blend", help="save a blend of voices as a voice file")
    blend.add_argument("spec", help="a blend such as 'jf_alpha:2+jm_kumo:1' (names or .voice files)")
    blend.add_argument("-o", "--output", help="write the voice here (NAME.voice); default: your voices, as --name")
    blend.add_argument("--name", help="the voice's name (default: the output file's name)")
    blend.add_argument("--pitch", type=float, default=None, help="its pitch in semitones (default: the blend's)")
    blend.add_argument("--speed", type=float, default=None, help="its speed factor (default: the blend's)")
    blend.add_argument("--force", action="store_true", help="replace an existing voice file")
    blend.set_defaults(run=cmd_voice_blend)
    show = vsub.add_parser("show", help="print a voice's name, pitch, speed and provenance as JSON")
    show.add_argument("voice", help="a voice name, .voice file or blend")
    show.set_defaults(run=cmd_voice_show)

    pod = sub.add_parser("podcast", help="render a multi-speaker script into an episode")
    pod.add_argument("script", help="script file (text format, or .json)")
    pod.add_argument("-o", "--output", required=True, help="episode file: .wav, .flac, .ogg, .opus or .mp3")
    pod.add_argument("--cast", action="append", metavar="SPEAKER=VOICE", help="assign a voice; repeatable")
    pod.add_argument("--srt", help="also write SRT subtitles here")
    pod.add_argument("--vtt", help="also write WebVTT subtitles here")
    pod.add_argument("--transcript", help="also write a JSON transcript with word timings here")
    pod.add_argument("--stereo", action="store_true", help="place speakers in stereo (pan from the cast header)")
    pod.add_argument("--lexicon", help="file of 'word phonemes' lines overriding pronunciations")
    pod.add_argument("--pitch", type=float, default=0.0, help="shift every speaker by this many semitones")
    pod.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common(pod)
    pod.set_defaults(run=cmd_podcast)
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
