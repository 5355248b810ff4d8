"""README's Python examples run as written, each in a fresh process and an empty folder, and leave the files they
say they write, with audio in them. An example that needs what a test machine lacks (a running server) is named in
NOT_RUN with the reason; any other example added to README must be listed here, or the first test fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

RUN = {
    # the first line of the example -> (files it writes, text its output must contain, slow)
    "from voicegen import synthesize, voices": (["meeting.flac"], "jf_alpha", False),
    "from voicegen import Engine, Performance, Request": ([], "", False),
    "from voicegen import Engine, fit_voice": (["gardener.voice", "gardener.wav"], "", True),
    "from voicegen import synthesize\nfrom voicegen.subtitles import to_vtt": (["episode.flac", "episode.vtt"], "Host", True),
    "from voicegen.text import Frontend, normalize": ([], "million dollars", False),
}
NOT_RUN = {
    "from openai import OpenAI": "needs a running `voicegen serve` (tests/test_server.py drives the openai client)",
}


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def example(head: str) -> str:
    found = [code for code in python_examples() if code.startswith(head)]
    assert len(found) == 1, f"README has {len(found)} Python examples starting with {head!r}"
    return found[0]


def test_every_python_example_is_run_or_says_why_not():
    for code in python_examples():
        assert any(code.startswith(head) for head in [*RUN, *NOT_RUN]), (
            f"a README example this file does not run:\n{code}")


def _audio_ok(path: Path) -> None:
    import soundfile as sf

    samples, rate = sf.read(path, dtype="float32")
    assert rate == 24000 and len(samples) > rate // 2, (path, rate, len(samples))
    assert np.isfinite(samples).all() and np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 1e-3, path


@pytest.mark.parametrize("head", [pytest.param(head, marks=[pytest.mark.slow] if slow else [], id=f"example-{i}")
                                  for i, (head, (_, _, slow)) in enumerate(RUN.items())])
def test_readme_example_runs_as_written(head, tmp_path):
    files, printed, _ = RUN[head]
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # examples open README's relative paths
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, "-c", example(head)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert printed in result.stdout, result.stdout[-2000:]
    for name in files:
        path = tmp_path / name
        assert path.is_file(), f"{name} was not written; the folder has {sorted(p.name for p in tmp_path.iterdir())}"
        if name.endswith((".wav", ".flac")):
            _audio_ok(path)
        elif name.endswith(".vtt"):
            text = path.read_text(encoding="utf-8")
            assert text.startswith("WEBVTT") and "-->" in text and "<v Host>" in text, text[:500]
        elif name.endswith(".voice"):
            from voicegen.weights.voice_file import read_voice

            voice = read_voice(path)
            assert voice.name == "gardener" and tuple(voice.table.shape) == (510, 256)
