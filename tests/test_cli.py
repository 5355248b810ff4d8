"""The command line, end to end: the files it writes are checked, not only its exit code."""

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


def test_say_writes_a_valid_non_silent_file_of_plausible_length(tmp_path):
    out = tmp_path / "hello.wav"
    result = run("say", "Hello from the command line. It works.", "-o", str(out), "--seed", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    data, rate = sf.read(out)
    assert rate == 24000 and data.ndim == 1
    assert 1.5 < len(data) / rate < 6.0  # two short sentences
    assert np.sqrt(np.mean(data**2)) > 0.01


def test_say_reads_stdin_and_files_and_honours_voice_and_speed(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("Reading this from a file.", encoding="utf-8")
    a, b = tmp_path / "a.flac", tmp_path / "b.flac"
    r1 = run("say", "-f", str(text), "-o", str(a), "--voice", "jm_kumo", "--speed", "1.3", "--seed", "0", "--device", "cpu")
    r2 = run("say", "-o", str(b), "--seed", "0", "--device", "cpu", stdin="Reading this from a file.")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert sf.info(a).duration < 0.9 * sf.info(b).duration  # faster speech is shorter


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
