"""Long text window by window (voicegen/longform.py): the windows join into the whole, drop what they rendered,
stream to a file atomically, and report progress; `voicegen say` goes through them."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf

from voicegen import Request
from voicegen.longform import render_windows, windows, write_long

TEXT = ("The kettle started whistling just as the phone rang. She folded the letter twice. "
        "Why does the bus always arrive late when it rains? Our neighbors planted sunflowers.")


def test_windows_cover_every_chunk_once_in_order(frontend):
    """Catches windows that skip, repeat or reorder chunks, or close before reaching their size."""
    chunks = frontend(TEXT + " " + TEXT)
    for limit in (1, 40, 100, 10_000):
        ranges = windows(chunks, limit)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(chunks)
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(ranges, ranges[1:]))
        for lo, hi in ranges[:-1]:
            assert sum(len(c.text) for c in chunks[lo:hi]) >= limit
            assert sum(len(c.text) for c in chunks[lo : hi - 1]) < limit  # closed as soon as it was full
    with pytest.raises(ValueError, match="window_chars must be a positive integer"):
        windows(chunks, 0)


def test_windows_join_into_synthesize_and_drop_their_audio(engine, assert_batch_invariant):
    """Several windows joined give `synthesize`'s audio: the same length (pauses between windows kept), the same
    sentence and word times, the same sound within the batch tolerance; and each window's items give up their audio
    once it is assembled (catches a plan that keeps the whole text's audio alive, i.e. memory growing with the
    text, and windows that lose pauses or restart times at zero)."""
    whole = engine.synthesize(TEXT, seed=5)
    plan = engine.plan(Request(TEXT, seed=5))
    parts = []
    for part in render_windows(engine, plan, window_chars=60):
        parts.append(part)
        assert all(it.audio is None for it in plan.items if it.durations is not None)
    assert len(parts) >= 2
    joined = np.concatenate([p.samples for p in parts])
    assert_batch_invariant(joined, whole.samples)
    segments = [s for p in parts for s in p.segments]
    assert [s.text for s in segments] == [s.text for s in whole.segments]
    assert [s.start for s in segments] == pytest.approx([s.start for s in whole.segments], abs=1e-9)
    assert [w.end for s in segments for w in s.words] == pytest.approx(
        [w.end for s in whole.segments for w in s.words], abs=1e-9)


def test_one_window_writes_what_synthesize_saves_bit_for_bit(engine, tmp_path):
    """A text within one window renders in the same batches as `synthesize`, so the streamed file is the same file
    (catches a streaming writer that clips, converts or orders blocks differently from Audio.save)."""
    a, b = tmp_path / "long.wav", tmp_path / "whole.wav"
    written = write_long(engine, Request(TEXT, "jf_alpha", 1.1, 3), a)
    whole = engine.synthesize(TEXT, "jf_alpha", 1.1, 3)
    whole.save(b)
    assert a.read_bytes() == b.read_bytes()
    assert written.duration == pytest.approx(whole.duration)
    assert [s.end for s in written.segments] == pytest.approx([s.end for s in whole.segments])


def test_progress_counts_every_chunk_and_second_in_order(engine):
    """Progress reaches (all chunks, all audio) and never goes back (catches a bar stuck at 0 or past the end)."""
    calls = []
    parts = list(render_windows(engine, Request(TEXT, seed=1), window_chars=60,
                                progress=lambda *state: calls.append(state)))
    total = sum(len(p.samples) for p in parts) / 24000
    assert calls[-1][0] == calls[-1][1] == sum(len(p.segments) for p in parts)
    assert calls[-1][2] == pytest.approx(total)
    assert all(a[0] <= b[0] and a[2] <= b[2] for a, b in zip(calls, calls[1:]))


def test_interrupt_or_bad_input_leaves_nothing(engine, tmp_path):
    """Ctrl-C after the first window, and a bad voice, leave no file and no temporary file behind (catches a
    streaming writer that writes straight to the output name)."""
    out = tmp_path / "out.flac"

    def interrupt(done, total, seconds):  # as Ctrl-C between two windows (the watcher thread's calls pass)
        if done < total and threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_long(engine, Request(TEXT, seed=1), out, window_chars=60, progress=interrupt)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unknown voice"):
        write_long(engine, Request(TEXT, voice="nobody"), out)
    assert list(tmp_path.iterdir()) == []


def test_cli_say_progress_goes_to_stderr_only_when_asked(tmp_path):
    """`--progress` draws the bar on stderr (sentences and seconds), nothing on stdout; without it and without a
    terminal there is no bar (catches a bar that is always on, or one written into stdout)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    outs = []
    for flags in (["--progress"], []):
        out = tmp_path / f"p{len(flags)}.wav"
        result = subprocess.run([sys.executable, "-m", "voicegen", "say", "Hello there. Goodbye now.", "-o", str(out),
                                 "--seed", "1", "--device", "cpu", *flags], capture_output=True, text=True, env=env,
                                timeout=600)
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        outs.append((result.stderr, sf.read(out)[0]))
    (with_bar, a), (without, b) = outs
    assert "2/2 sentences" in with_bar and "s of audio" in with_bar
    assert "sentences," not in without and without.startswith("wrote ")
    assert np.array_equal(a, b)
