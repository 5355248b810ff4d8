"""Command line: `voicegen say`, `voicegen voices`, `voicegen voice fit|blend|show`, `voicegen podcast`,
`voicegen warmup`, `voicegen serve` (also `python -m voicegen`).

Every failure is one line on stderr: `voicegen: error: ...` with exit status 2 for bad input or an unusable path
(checked before any rendering), `voicegen: interrupted` with 130 for Ctrl-C, `voicegen: terminated` with 143 or 129
for SIGTERM or SIGHUP (`voicegen.interrupts`), and `voicegen: internal error: ...` with 1 for a bug
(VOICEGEN_DEBUG=1 shows its traceback). No output file is left behind in any of these cases.
Progress goes to stderr, only on a terminal or with --progress; stdout is written to only by the reports of
`voices`, `voice show` and `warmup`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from . import interrupts


def _decode(data: bytes, source: str) -> str:
    """UTF-8 bytes (a BOM is allowed) -> text; ValueError naming `source` and the first bad byte otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fix = "send UTF-8 text" if source == "standard input" else "save it as UTF-8"
        raise ValueError(f"{source} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                         f"{fix}") from None


def read_text_file(path: str, what: str = "file") -> str:
    """A UTF-8 text file, with errors that name it (missing, a directory, unreadable, not UTF-8)."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise ValueError(f"{what} {path!r} is a directory; give a file") from None
    except FileNotFoundError:
        raise ValueError(f"{what} {path!r} not found") from None
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None
    return _decode(data, f"{what} {path!r}")


def _read_text(args: argparse.Namespace) -> str:
    if args.file is not None and args.text is not None:
        raise ValueError("give the text either as an argument or with -f/--file, not both")
    if args.file:
        return read_text_file(args.file, "text file")
    if args.text is None or args.text == "-":
        if sys.stdin is None or (args.text is None and sys.stdin.isatty()):
            raise ValueError("no text: give it as an argument, with --file PATH, or on standard input")
        buffer = getattr(sys.stdin, "buffer", None)
        return _decode(buffer.read(), "standard input") if buffer is not None else sys.stdin.read()
    return args.text


def _lexicon(path: str | None) -> dict[str, str] | None:
    """A lexicon file: one `word phonemes` pair per line (tab or spaces); `#` starts a comment."""
    if not path:
        return None
    out = {}
    for number, line in enumerate(read_text_file(path, "lexicon").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'word phonemes', got {line!r}")
        out[parts[0]] = parts[1].strip()
    return out


def _performance(args: argparse.Namespace):
    """The engine's Performance: the device's default (None) with --compile/--no-compile and --dtype applied."""
    from .performance import Performance, resolve_device

    compile_, dtype = getattr(args, "compile", None), getattr(args, "dtype", None)
    if compile_ is None and dtype is None:
        return None
    return Performance.default(resolve_device(getattr(args, "device", None)), compile=compile_, dtype=dtype)


def _check_outputs(*paths: str | None) -> None:
    """Refuse a bad output name or an unwritable destination before any work, naming the user's path."""
    from .audio import audio_format
    from .files import check_output

    audio_format(paths[0])
    for path in paths:
        if path:
            check_output(path)


def _engine(args: argparse.Namespace):
    from .engine import Engine

    return Engine(
        None,
        args.device,
        lexicon=_lexicon(getattr(args, "lexicon", None)),
        alphabet=getattr(args, "alphabet", None),
        voices=getattr(args, "voice_file", None) or None,
        performance=_performance(args),
    )


def cmd_warmup(args: argparse.Namespace) -> int:
    from .progress import progress_bar, progress_enabled

    engine = _engine(args)
    report = engine.warmup(progress_bar("shape") if progress_enabled() else None)
    print(report)
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    from .engine import Request
    from .longform import stream_long, write_long
    from .progress import count, progress_bar, progress_enabled

    to_stdout = args.output == "-"
    if to_stdout and sys.stdout.isatty():
        raise ValueError("-o - writes WAV audio to standard output, which is a terminal here; pipe it "
                         "(voicegen say ... -o - | aplay) or redirect it to a file")
    if not to_stdout:
        _check_outputs(args.output)
    text = _read_text(args)
    engine = _engine(args)
    request = Request(text, args.voice, args.speed, args.seed, args.pitch)
    bar = progress_bar("sentence") if progress_enabled() else None
    # window by window, streamed to disk (or the pipe): memory does not grow with the text (voicegen/longform.py)
    if to_stdout:
        try:
            result = stream_long(engine, request, sys.stdout.buffer, progress=bar)  # planned (checked) before a byte
        except BrokenPipeError:  # the reader stopped (| head): end as a killed writer would, quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            return 128 + 13  # SIGPIPE
    else:
        result = write_long(engine, request, args.output, progress=bar)
    where = "standard output" if to_stdout else result.path
    print(f"wrote {where} ({result.duration:.2f} s, {count(len(result.segments), 'sentence')})", file=sys.stderr)
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


def _check_voice_destination(name: str, output: str | None, overwrite: bool) -> None:
    """Refuse, before any work, a place a voice named `name` cannot be saved: `output` (NAME.voice, not there yet
    unless `overwrite`, in a writable folder), or without it the user's voice folder (not a built-in name, not
    taken unless `overwrite`)."""
    from .files import check_output
    from .weights.voice_file import user_voice_path

    if output:
        if not output.lower().endswith(".voice"):
            raise ValueError(f"voice files end in .voice; got {output!r}")
        check_output(output)
        if Path(output).exists() and not overwrite:
            raise ValueError(f"{output} exists; pass --force to replace it")
        return
    path = user_voice_path(name)
    if path.exists() and not overwrite:
        raise ValueError(f"a user voice named {name!r} exists already ({path}); choose another name, or pass --force "
                         "to replace it")
    check_output(path)


def _write_voice(voice, output: str | None, overwrite: bool) -> str:
    """Save to `output`, or into the user's voice folder under the voice's name -> where it went."""
    from .weights import install_voice

    _check_voice_destination(voice.name, output, overwrite)  # (voice fit checked before fitting; a file may have appeared)
    if output:
        return str(voice.save(output))
    return str(install_voice(voice, overwrite=overwrite))


def _voice_name(args: argparse.Namespace, fallback: str) -> str:
    """The new voice's name: --name (ValueError if empty or not a valid name), else the output file's name, else
    `fallback`, made valid."""
    import re

    from .weights.voice_file import check_voice_name

    if args.name is not None:
        if not args.name.strip():
            raise ValueError("--name is empty; give the voice a name such as 'host' (a letter or digit, then letters, "
                             "digits, '_', '.' or '-')")
        return check_voice_name(args.name)
    stem = Path(args.output).stem if args.output else fallback
    return re.sub(r"[^\w.\-]", "_", stem).lstrip("_.-") or "voice"


def cmd_voice_fit(args: argparse.Namespace) -> int:
    import soundfile as sf

    from .fit import fit_voice

    if not args.output and args.name is None:
        raise ValueError("say where the voice goes: -o NAME.voice, or --name NAME to keep it in your voices")
    name = _voice_name(args, Path(args.recording).stem)
    _check_voice_destination(name, args.output, args.force)  # before the minutes of fitting
    recording = Path(args.recording)
    if not recording.exists():
        raise ValueError(f"recording {args.recording!r} not found")
    if recording.is_dir():
        raise ValueError(f"recording {args.recording!r} is a directory; give an audio file")
    text = read_text_file(args.text_file, "text file") if args.text_file else args.text
    try:
        audio, rate = sf.read(args.recording, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ValueError(f"cannot read {args.recording}: {e}") from None
    from .engine import Engine
    from .performance import Performance

    engine = Engine(None, args.device, performance=Performance())  # a few renders beside gradient steps: no compile
    from .progress import progress_enabled

    bar = _progress_bar() if progress_enabled() else None
    voice = fit_voice(audio, rate, text, name=name, start=args.start,
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
    name = _voice_name(args, mixed.name)
    voice = Voice(name, mixed.table, args.pitch if args.pitch is not None else mixed.pitch,
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
    from .podcast import Script
    from .podcast.render import render_episode, require_turns
    from .progress import count, progress_enabled

    cast = {}
    for item in args.cast or []:
        speaker, sep, voice = item.partition("=")
        if not sep or not speaker.strip() or not voice.strip():
            raise ValueError(f"--cast takes SPEAKER=VOICE; got {item!r}")
        cast[speaker.strip()] = voice.strip()
    _check_outputs(args.output, args.srt, args.vtt, args.transcript)
    text = read_text_file(args.script, "script")
    script = Script.from_str(text, as_json=Path(args.script).suffix.lower() == ".json")
    require_turns(script)  # before the weights load (render_episode checks it too)
    engine = _engine(args)
    result = render_episode(
        engine,
        script,
        args.output,
        voices=cast or None,
        seed=args.seed,
        pitch=args.pitch,
        srt=args.srt,
        vtt=args.vtt,
        transcript=args.transcript,
        stereo=args.stereo,
        progress=progress_enabled(),
    )
    print(f"wrote {args.output} ({result.duration:.1f} s, {count(len(result.segments), 'turn')})", file=sys.stderr)
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
        dtype=args.dtype,
        max_input_chars=args.max_input_chars,
        max_queue=args.max_queue,
        max_turn_items=args.max_turn_items,
        timeout=args.timeout,
    )
    serve(config, host=args.host, port=args.port, log_level=args.log_level)
    return 0


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other voicegen error (status 2); subcommands' parsers
    are of this class too (argparse makes them of their parent's class)."""

    def error(self, message: str):
        self.exit(2, f"voicegen: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .engine import DEFAULT_VOICE
    from .performance import DTYPE_NAMES
    from .text.phonemize import ALPHABETS

    parser = _Parser(prog="voicegen", description="Fast multi-speaker text-to-speech.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
        p.add_argument("--seed", type=int, default=None, help="make the output reproducible")
        p.add_argument("--voice-file", action="append", help="extra voices (.voice/.npy/.npz/.pt); repeatable")
        p.add_argument("--alphabet", choices=ALPHABETS, default=None,
                       help="phoneme alphabet: espeak (default, clearest for the built-in voices) or misaki")
        progress_options(p)
        speed_options(p)

    def progress_options(p: argparse.ArgumentParser) -> None:
        shown = p.add_mutually_exclusive_group()
        shown.add_argument("--progress", dest="progress", action="store_const", const=True, default=None,
                           help="show progress on stderr even when it is not a terminal")
        shown.add_argument("-q", "--quiet", dest="progress", action="store_const", const=False,
                           help="no progress (default: progress only when stderr is a terminal)")

    def speed_options(p: argparse.ArgumentParser, compile_default: str = "on CUDA yes, on the CPU no") -> None:
        p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                       help="torch.compile the frame phase, compiled code cached under the voicegen cache "
                            f"(default: {compile_default})")
        p.add_argument("--dtype", choices=list(DTYPE_NAMES), default=None,
                       help="precision of the frame phase (default: bfloat16 on CUDA, float32 on the CPU; "
                            "float16 is CUDA only, bfloat16 on the CPU needs AVX512-BF16/AMX)")

    say = sub.add_parser("say", help="speak text into an audio file")
    say.add_argument("text", nargs="?", help="the text ('-' or nothing: read standard input)")
    say.add_argument("-o", "--output", required=True, help="output file: .wav, .flac, .ogg, .opus or .mp3; - writes WAV to standard output")
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
    progress_options(fit)
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
    warm = sub.add_parser("warmup", help="compile and capture the frame phase ahead of time, and report what it did")
    warm.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    speed_options(warm, compile_default="yes: warming up is compiling ahead of time")
    warm.set_defaults(run=cmd_warmup, compile=True)

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
    common(pod)
    pod.set_defaults(run=cmd_podcast)

    srv = sub.add_parser("serve", help="run an OpenAI-compatible speech server (needs the server extra)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8880, help="port (default 8880)")
    srv.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    srv.add_argument("--api-key", default=None,
                     help="require 'Authorization: Bearer KEY' on every request (default: $VOICEGEN_API_KEY if set)")
    srv.add_argument("--voice-file", action="append", help="extra voices (.voice/.npy/.npz/.pt); repeatable")
    srv.add_argument("--voice-map", action="append", metavar="NAME=VOICE",
                     help="map a voice name (e.g. OpenAI's alloy) to a voice or blend; repeatable")
    srv.add_argument("--lexicon", help="file of 'word phonemes' lines overriding pronunciations")
    srv.add_argument("--alphabet", choices=ALPHABETS, default=None, help="phoneme alphabet (default espeak)")
    speed_options(srv)
    srv.add_argument("--max-input-chars", type=int, default=4096,
                     help="longest input per request (default 4096, as OpenAI); longer: 413")
    srv.add_argument("--max-queue", type=int, default=None,
                     help="most sentences queued or rendering across clients (default 128 on the CPU, 2048 on CUDA); "
                          "beyond: 429")
    srv.add_argument("--max-turn-items", type=int, default=None,
                     help="most sentences per batching turn (default 4 on the CPU, 256 on CUDA)")
    srv.add_argument("--timeout", type=float, default=300.0, help="seconds a request may take (default 300); then 504")
    srv.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    srv.set_defaults(run=cmd_serve)
    return parser


def _warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"voicegen: warning: {message}", file=sys.stderr, flush=True)


def _message(exc: BaseException) -> str:
    """One line for an error: an OSError names its file and the reason, anything else its message."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    installed = interrupts.install()  # `python -m voicegen` installed them already, and keeps them to the end
    try:
        with interrupts.deferred():  # build_parser imports torch and numpy: not interrupted halfway
            parser = build_parser()
        args = parser.parse_args(argv)
        from .progress import show_progress

        show_progress(args.progress if hasattr(args, "progress") else None)
        warnings.showwarning = _warning
        status = args.run(args)
        interrupts.check()  # a signal that compiled code swallowed on the way (nothing was written: `atomic_write`)
        return status
    except KeyboardInterrupt:  # Ctrl-C, or interrupts.Terminated
        return interrupts.report()
    except Exception as exc:  # noqa: BLE001 - every failure is one line
        if interrupts.pending():  # the interrupt became another error inside compiled code (e.g. an ImportError)
            return interrupts.report()
        if isinstance(exc, (ValueError, OSError, RuntimeError)):
            print(f"voicegen: error: {_message(exc)}", file=sys.stderr)
            return 2
        if os.environ.get("VOICEGEN_DEBUG"):  # a bug: the traceback on request
            raise
        print(f"voicegen: internal error: {type(exc).__name__}: {_message(exc)} (a bug: please report it; "
              "VOICEGEN_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    finally:
        interrupts.exiting()
        if installed:
            interrupts.uninstall()
