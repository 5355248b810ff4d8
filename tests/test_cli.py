"""The command line, end to end: the files it writes are checked, not only its exit code."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf


def run(*args, stdin=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "voicegen", *args], input=stdin, capture_output=True, text=True, env=env, timeout=600
    )


def test_say_writes_a_valid_non_silent_file_of_plausible_length(tmp_path, transcribe, nearest_voice):
    """The file says the words, in the default voice (issue 15, class 9: an RMS floor let noise, reversed audio
    or the wrong voice pass). Catches: any of those, judged by Whisper and by voice print on the written file."""
    from voicegen.eval.wer import word_error_rate

    text = "Hello from the command line. It works."
    out = tmp_path / "hello.wav"
    result = run("say", text, "-o", str(out), "--seed", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    data, rate = sf.read(out)
    assert rate == 24000 and data.ndim == 1
    assert 1.5 < len(data) / rate < 6.0  # two short sentences
    assert np.sqrt(np.mean(data**2)) > 0.01
    heard = transcribe(data.astype(np.float32), rate)
    assert word_error_rate(text, heard) <= 0.25, heard
    assert nearest_voice(data, rate)[0] == "jf_gongitsune"


def test_say_reads_stdin_and_files_and_honours_voice_and_speed(tmp_path, nearest_voice):
    """--voice picks the voice (by voice print, not only a different duration: issue 15, class 9) and --speed the
    rate. Catches: --voice ignored or mapped to another voice, --speed ignored."""
    text = tmp_path / "in.txt"
    text.write_text("Reading this from a file.", encoding="utf-8")
    a, b = tmp_path / "a.flac", tmp_path / "b.flac"
    r1 = run("say", "-f", str(text), "-o", str(a), "--voice", "jm_kumo", "--speed", "1.3", "--seed", "0", "--device", "cpu")
    r2 = run("say", "-o", str(b), "--seed", "0", "--device", "cpu", stdin="Reading this from a file.")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert sf.info(a).duration < 0.9 * sf.info(b).duration  # faster speech is shorter
    assert nearest_voice(sf.read(a)[0])[0] == "jm_kumo" and nearest_voice(sf.read(b)[0])[0] == "jf_gongitsune"


def test_voices_lists_names():
    result = run("voices")
    assert result.returncode == 0
    assert result.stdout.split() == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["say", "Hi", "-o", "x.wav", "--voice", "nobody"], "unknown voice 'nobody'; known voices: jf_alpha"),
        (["say", "Hi", "-o", "x.wav", "--speed", "0"], "speed must be"),
        (["say", "Hi", "-o", "x.mid"], "unknown extension '.mid'"),
        (["say", "   ", "-o", "x.wav"], "speakable"),
    ],
)
def test_errors_are_one_clear_line_and_no_file(tmp_path, args, message):
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    result = run(*args, "--device", "cpu")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_module_and_script_entry_points_agree():
    import shutil

    exe = shutil.which("voicegen")
    if exe is None:
        pytest.skip("voicegen console script not installed")
    result = subprocess.run([exe, "voices"], capture_output=True, text=True, timeout=120)
    assert result.stdout == run("voices").stdout


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("voicegen: error: ") and err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize(
    "args, message",
    [
        (["say", "--seed", "abc", "Hi", "-o", "x.wav"],
         "voicegen: error: argument --seed: invalid int value: 'abc' (see voicegen say --help)"),
        (["say", "Hi", "-o", "x.wav", "-q", "--progress"],
         "voicegen: error: argument --progress: not allowed with argument -q/--quiet (see voicegen say --help)"),
        (["say", "Hi"], "voicegen: error: the following arguments are required: -o/--output (see voicegen say --help)"),
        (["say", "Hi", "-o", "x.wav", "--bogus"], "voicegen: error: unrecognized arguments: --bogus (see voicegen --help)"),
        (["voice", "fit"], "voicegen: error: the following arguments are required: recording (see voicegen voice fit --help)"),
        (["nope"], "voicegen: error: argument command: invalid choice: 'nope'"),
    ],
)
def test_argument_errors_are_one_line_with_status_2(args, message, capsys):
    """QA: argparse's errors printed the whole usage before the error, unlike every other error (README: one line,
    status 2). Catches: the usage coming back, another status, or a message that no longer says where help is."""
    from voicegen import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    assert one_line_error(capsys).startswith(message)


def test_help_still_prints_the_usage(capsys):
    from voicegen import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["say", "--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("usage: voicegen say")


def test_say_refuses_text_and_file_together(tmp_path, monkeypatch, capsys):
    """QA: `say "text" -f file.txt` spoke the file and silently dropped the text. Catches: either one chosen, a
    render started (replaced here by one that fails), a file written."""
    import voicegen.longform
    from voicegen import cli

    def write_long(*args, **kwargs):
        raise AssertionError("rendering started")

    monkeypatch.setattr(voicegen.longform, "write_long", write_long)
    text = tmp_path / "in.txt"
    text.write_text("From the file.", encoding="utf-8")
    out = tmp_path / "out.wav"
    assert cli.main(["say", "From the argument.", "-f", str(text), "-o", str(out), "--device", "cpu"]) == 2
    assert one_line_error(capsys) == "voicegen: error: give the text either as an argument or with -f/--file, not both"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_float16_on_the_cpu_says_it_is_cuda_only(tmp_path, capsys):
    """QA: --dtype float16 on the CPU blamed missing bfloat16 support (which this CPU may have) and told the CLI
    user `dtype=None`. Catches: either wording coming back."""
    import torch

    from voicegen import cli
    from voicegen.performance import Performance

    with pytest.raises(ValueError, match="^float16 runs on CUDA only; on the CPU use bfloat16 .* or float32$"):
        Performance(dtype=torch.float16).check(torch.device("cpu"))
    assert cli.main(["say", "Hi.", "-o", str(tmp_path / "a.wav"), "--dtype", "float16", "--device", "cpu"]) == 2
    err = one_line_error(capsys)
    assert "float16 runs on CUDA only" in err and "dtype=None" not in err and "AVX512" in err
    assert list(tmp_path.iterdir()) == []


def test_say_to_standard_output_writes_the_file_it_would_write_to_disk(tmp_path):
    """`-o -` streams WAV into a pipe (its header's sizes 'unknown': a pipe cannot seek back), with the samples the
    .wav file gets, bit for bit. Catches: another float-to-integer conversion than libsndfile's, a header a reader
    rejects, the report line on stdout (it would corrupt the audio)."""
    text = "Hello there. It costs $4.20."
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    piped = subprocess.run([sys.executable, "-m", "voicegen", "say", text, "--seed", "3", "-o", "-"], capture_output=True,
                           env=env, timeout=600)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout[:4] == b"RIFF" and piped.stdout[4:8] == b"\xff\xff\xff\xff" and piped.stdout[40:44] == b"\xff" * 4
    assert b"wrote standard output" in piped.stderr
    result = run("say", text, "--seed", "3", "-o", str(tmp_path / "x.wav"))
    assert result.returncode == 0, result.stderr
    streamed, rate = sf.read(io.BytesIO(piped.stdout), dtype="int16")
    saved, _ = sf.read(tmp_path / "x.wav", dtype="int16")
    assert rate == 24000 and len(streamed) > rate and np.array_equal(streamed, saved)


def test_wav_stream_converts_as_libsndfile_and_fills_sizes_where_it_can_seek():
    from voicegen.audio import stream_wav

    x = np.random.default_rng(0).uniform(-1.2, 1.2, 50_000).astype(np.float32)
    x[:1000] *= 1e-4  # near zero, where rounding differs most
    on_disk = io.BytesIO()
    sf.write(on_disk, x, 24000, subtype="PCM_16", format="WAV")
    buffer = io.BytesIO()
    assert stream_wav(buffer, [x[:777], x[777:]], 24000) == len(x)
    data = buffer.getvalue()
    assert data[4:8] == (36 + 2 * len(x)).to_bytes(4, "little") and data[40:44] == (2 * len(x)).to_bytes(4, "little")
    assert np.array_equal(sf.read(io.BytesIO(data), dtype="int16")[0], sf.read(io.BytesIO(on_disk.getvalue()), dtype="int16")[0])


def test_say_to_standard_output_refuses_a_terminal(monkeypatch, capsys):
    from voicegen import cli

    monkeypatch.setattr(cli, "_engine", lambda args: pytest.fail("the engine was built"))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main(["say", "Hi.", "-o", "-"]) == 2
    assert "standard output, which is a terminal" in capsys.readouterr().err
