"""The mixer's shortcuts held to the brute-force computations they replace: the per-block true-peak bounds
(`loudness.PeakBounds`), the gain passes' sparse loudness corrections, the writer's in-place output, and the
per-turn helpers (trimming from the ends, column-wise panning, joining pieces with one copy)."""

import numpy as np
import pytest

from voicegen import dsp
from voicegen import loudness as L
from voicegen.audio import Audio, Segment
from voicegen.podcast import mix
from voicegen.podcast.mix import EpisodeWriter, join_pieces
from voicegen.podcast.script import Pause

SR = 24000


def speechlike(seconds, seed=0, clicks=6):
    """A buzz with harmonics under a syllable envelope, breath noise and a few clicks far above it."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    phase = 2 * np.pi * np.cumsum(rng.uniform(100, 240) * (1 + 0.1 * np.sin(2 * np.pi * 0.4 * t))) / SR
    buzz = sum(np.sin(h * phase) / h for h in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 1.5
    x = 0.08 * buzz * env + 0.01 * rng.standard_normal(n) * (0.3 + env)
    x[rng.integers(0, n, clicks)] += rng.uniform(0.4, 0.8, clicks) * rng.choice([-1, 1], clicks)
    return x.astype(np.float32)


def block_envelope(x):
    """Largest true-peak envelope value per PEAK_BLOCK frames of x (N, C), computed at every frame."""
    env = L._true_peak_envelope(x)
    blocks = -(-len(env) // L.PEAK_BLOCK)
    padded = np.zeros(blocks * L.PEAK_BLOCK)
    padded[: len(env)] = env
    return padded.reshape(blocks, L.PEAK_BLOCK).max(axis=1)


def signals():
    rng = np.random.default_rng(3)
    nyquist = np.tile([0.7, -0.7], 500)  # alternating samples: inter-sample values 2x the samples
    yield "speech", speechlike(2.0, seed=1)
    yield "noise", (0.3 * rng.standard_normal(9001)).astype(np.float32)
    yield "nyquist in speech", np.concatenate([speechlike(0.3, seed=2), nyquist, speechlike(0.2, seed=4)])
    yield "edges", np.concatenate([[0.9], np.zeros(40), [-0.9]]).astype(np.float32)  # loud first and last samples
    for n in (1, 2, 3, 33):
        yield f"{n} frames", (rng.uniform(-1, 1, n)).astype(np.float32)


@pytest.mark.parametrize("name, mono", list(signals()), ids=[name for name, _ in signals()])
def test_peak_bounds_hold_for_every_block(name, mono):
    """PeakMap reads only the blocks whose bound exceeds the level; this catches a bound below the true peak (a
    missed limiter frame) anywhere: at block seams, at the signal's ends, across pieces fed separately (frame
    pieces and panned mono pieces mixed, as EpisodeWriter feeds them), for any length."""
    gains = dsp.pan_gains(-0.4)
    cuts = sorted({0, len(mono), len(mono) // 3, len(mono) // 3 + 1, (2 * len(mono)) // 3})
    bounds, frames = L.PeakBounds(2), []
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        piece = mono[a:b]
        if k % 2:
            bounds.add_panned(piece, gains)
        else:
            bounds.add(dsp.place(piece, gains))
        frames.append(dsp.place(piece, gains))
    x = np.concatenate(frames)
    bound, near = bounds.bounds()
    env = block_envelope(x)
    assert bound.shape == env.shape == near.shape
    assert np.all(env <= bound), np.flatnonzero(env > bound)
    # near[b]: the largest |sample| of blocks b - 1 .. b + 1 (the scale of the rounding margin there), block by block
    blocks = -(-len(x) // L.PEAK_BLOCK)
    peak = np.zeros(blocks * L.PEAK_BLOCK)
    peak[: len(x)] = np.abs(x).max(axis=1)
    block_max = np.pad(peak.reshape(blocks, L.PEAK_BLOCK).max(axis=1), 1)
    want = np.maximum(np.maximum(block_max[:-2], block_max[1:-1]), block_max[2:])
    np.testing.assert_allclose(near, want, rtol=1e-6, atol=0)


def test_peak_bounds_are_close_to_the_peak_for_low_frequencies():
    """The bound is only useful if it is tight where speech is: this catches it falling back to the general
    2.18 x sample peak (every speech block a candidate) for a 200 Hz tone, where true peak ~ sample peak."""
    x = (0.5 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR)).astype(np.float32)
    bounds = L.PeakBounds(1)
    bounds.add(x)
    bound, _ = bounds.bounds()
    assert bound[2:-2].max() < 0.5 * 1.01  # the tone starts and ends with a kink (zero outside): bounds there are higher


def test_peak_map_with_writer_bounds_finds_the_same_frames():
    """EpisodeWriter hands its bounds (gathered from mono turns) to PeakMap; this catches them leading the scan
    to other frames than bounds computed from the frames themselves."""
    writer = EpisodeWriter(None, stereo=True)
    for k in range(3):
        writer.add_turn(speechlike(1.5, seed=k), pan=(-0.3, 0.3, 0.8)[k])
    source = writer._source().copy()  # the frames written (close() limits them in place)
    for level in (0.05, 0.2, 0.5):
        got = L.PeakMap(source, bounds=writer._peaks).over(level)
        want = L.PeakMap(source).over(level)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    with pytest.raises(ValueError, match="frames"):
        L.PeakMap(source[:-1], bounds=writer._peaks)


@pytest.mark.parametrize("group_frames", [L.PeakMap.GROUP_FRAMES, 3000])
def test_limited_loudness_correction_matches_metering_the_limited_signal(monkeypatch, group_frames):
    """The gain passes correct the source's sub-block energies only around the limited frames; this catches the
    correction drifting from metering the whole limited signal (a wrong sign or gain, a K-filter state lost where
    the stretches are cut into groups, a limited frame left out)."""
    monkeypatch.setattr(L.PeakMap, "GROUP_FRAMES", group_frames)
    x = np.stack([speechlike(6, seed=7, clicks=20), speechlike(6, seed=8, clicks=20)], axis=1).astype(np.float64)
    meter = L.LoudnessMeter(SR, 2)
    meter.add(x)
    sub = meter.sub_block_energies().sum(axis=1)
    gain_db = -16.0 - meter.integrated() + 2.0  # loud enough that the limiter works hard
    g, ceiling, half = L._limiter_setup(SR, gain_db, -1.0)
    fast = L._limited_sub_energies(x, SR, g, ceiling, half, L.PeakMap(x), sub)
    curve = L._limiter_gain(x * g, ceiling, half)
    assert (curve < 1).sum() > 1000
    reference = L.LoudnessMeter(SR, 2)
    reference.add(x * g * curve[:, None])
    want = reference.sub_block_energies().sum(axis=1)
    np.testing.assert_allclose(fast, want, rtol=1e-5)
    assert L._gated_loudness(fast, SR) == pytest.approx(L._gated_loudness(want, SR), abs=1e-6)


def test_episode_writer_output_equals_the_plain_normalization_of_its_frames():
    """The writer meters and bounds turns as they arrive and writes the limited output in place; this catches any
    of that changing the result against normalizing the written frames from scratch (meter, peak map, gain search,
    limiter, each from the frames alone)."""
    writer = EpisodeWriter(None, stereo=True)
    for k in range(4):
        writer.add_turn(speechlike(2.0, seed=10 + k, clicks=10), pan=(-0.5, 0.5)[k % 2])
        writer.add_silence(0.1 * k)
    source = writer._source().copy()  # the frames written (close() limits them in place)
    writer.close()
    peaks = L.PeakMap(source)
    gain = L.solve_gain(source, SR, writer.target_lufs, writer.true_peak_db, peaks=peaks)
    want = np.concatenate(list(L.limited_blocks(source, SR, gain, writer.true_peak_db, peaks=peaks)))
    assert np.abs(want).max() > 0.5 and (peaks._runs[1][1] < 0.9).any()  # the limiter acted
    # the writer's meter filters each panned turn once (other rounding): the gain agrees to ~1e-12 dB
    np.testing.assert_allclose(writer.audio.samples, want, rtol=1e-6, atol=1e-9)


def test_trim_from_the_ends_equals_a_full_scan():
    """_trim looks only at the ends of a turn; this catches it stopping at the wrong sample (a piece seam, a loud
    sample in one channel only) against the threshold applied to every frame."""
    rng = np.random.default_rng(0)
    for n, lead, tail in [(50000, 3000, 7000), (9000, 0, 0), (30000, 2047, 2049), (5000, 4999, 0)]:
        x = (rng.uniform(-0.2, 0.2, (n, 2)) * (rng.random((n, 1)) < 0.5)).astype(np.float32)
        x[:lead] *= 1e-4
        x[n - tail :] *= 1e-4
        if lead < n:
            x[lead, 1] = 0.3  # loud in the right channel only
        loud = np.flatnonzero(np.abs(x).max(axis=1) > mix.TRIM_THRESHOLD)
        keep = int(mix.TRIM_KEEP_S * SR)
        start, stop = max(0, loud[0] - keep), min(n, loud[-1] + 1 + keep)
        trimmed, offset = mix._trim(x, SR)
        assert offset == start and len(trimmed) == stop - start
    assert len(mix._trim(np.zeros((100, 1), np.float32), SR)[0]) == 0


def test_place_and_mono_helpers_equal_their_plain_forms():
    """dsp.place fills two channels with one complex multiply (others one channel at a time), into rows of a larger
    buffer too, and to_mono returns a view for one channel; this catches either differing from the broadcast
    product and the channel mean."""
    mono = np.random.default_rng(1).standard_normal(1001).astype(np.float32)
    mono[:3] = [0.0, -0.0, 1e-40]  # zeros and a subnormal
    for gains in (dsp.pan_gains(0.3), dsp.pan_gains(-1.0), np.array([0.5, -0.25], np.float32),
                  np.array([0.7], np.float32), np.array([0.1, 0.2, 0.3], np.float32)):
        want = mono[:, None] * gains
        np.testing.assert_array_equal(dsp.place(mono, gains), want)
        rows = np.full((len(mono) + 7, len(gains)), np.nan, np.float32)
        dsp.place(mono, gains, out=rows[3 : 3 + len(mono)])
        np.testing.assert_array_equal(rows[3 : 3 + len(mono)], want)
        assert np.isnan(rows[:3]).all() and np.isnan(rows[3 + len(mono) :]).all()
    np.testing.assert_array_equal(dsp.pan(mono, 0.3), mono[:, None] * dsp.pan_gains(0.3))
    x = np.random.default_rng(2).standard_normal((500, 2)).astype(np.float32)
    np.testing.assert_array_equal(dsp.to_mono(x), x.mean(axis=1, dtype=np.float32))
    np.testing.assert_array_equal(dsp.to_mono(x[:, :1]), x[:, 0])


def test_join_pieces_equals_fading_and_concatenating_each_piece(monkeypatch):
    """join_pieces copies every piece once into an uninitialized array, fades it in place and zeroes the pauses;
    this catches a fade applied at the wrong place, a pause of the wrong length or one left unzeroed (new arrays
    are made full of NaN here), against fading each piece and concatenating."""
    pieces = [Audio(speechlike(0.5, seed=k), SR, [Segment("x", 0.0, 0.5)]) for k in range(3)]
    with monkeypatch.context() as patch:
        patch.setattr(np, "empty", lambda shape, dtype=float, **kw: np.full(shape, np.nan, dtype))
        joined = join_pieces([pieces[0], Pause(0.2), pieces[1], pieces[2]], SR, fade_ends=False)
    fade = int(round(mix.FADE_S * SR))
    want = np.concatenate([dsp.fade(pieces[0].samples, 0, fade), np.zeros(int(0.2 * SR), np.float32),
                           dsp.fade(pieces[1].samples, fade, fade), dsp.fade(pieces[2].samples, fade, 0)])
    np.testing.assert_array_equal(joined.samples, want)


@pytest.mark.parametrize("target", [-16.0, -13.0])  # -13: heavier limiting
def test_gain_search_lands_within_tolerance_after_one_exact_pass(monkeypatch, target):
    """solve_gain starts from a guess of the limiter's loudness loss and confirms it with exact passes; this
    catches a guess that misleads the search (the result off target) or one so poor that typical speech needs
    more than one exact pass (the mixer's time)."""
    calls = []
    exact = L._limited_sub_energies
    monkeypatch.setattr(L, "_limited_sub_energies", lambda *args: calls.append(1) or exact(*args))
    x = np.stack([speechlike(8, seed=21, clicks=30), speechlike(8, seed=22, clicks=30)], axis=1)
    y = L.normalize_loudness(x, SR, target_lufs=target)
    assert L.integrated_loudness(y, SR) == pytest.approx(target, abs=0.05)
    assert L.true_peak_dbtp(y, SR) <= -1.0 + 1e-6
    assert len(calls) == 1


def test_k_filter_streams_like_the_biquad_cascade_along_either_axis():
    """The meter and the gain passes run K-weighting as one 4th-order lfilter, on (n, C) frames along axis 0 and on
    (C, n) along axis 1, carrying its state between calls; this catches a product filter that differs from the
    BS.1770 cascade, or a state lost or misplaced (wrong axis, wrong channel) where a signal is fed in pieces."""
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(5).standard_normal((SR, 2)) * [0.3, 0.05]
    x[5000:9000] = 0.0  # a silent stretch: the ring-out continues through it
    ref = signal.sosfilt(L.k_weighting_sos(SR), x, axis=0)
    cuts = [0, 1, 700, 5001, 12000, SR]
    rows, cols, state_r, state_c = [], [], None, None
    for a, b in zip(cuts[:-1], cuts[1:]):
        y, state_r = L.k_filter(x[a:b], SR, state_r, axis=0)
        rows.append(y)
        y, state_c = L.k_filter(np.ascontiguousarray(x[a:b].T), SR, state_c)
        cols.append(y.T)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(np.concatenate(rows), ref, atol=1e-11 * scale)
    np.testing.assert_allclose(np.concatenate(cols), ref, atol=1e-11 * scale)


@pytest.mark.parametrize("sr", [24000, 22050, 11025])
def test_meter_sums_of_squares_equal_summing_the_squares(sr):
    """The meter sums each part's squares as rows of a reshaped view or one dot product each; this catches a part
    cut at the wrong sample or lost (uneven sub-blocks at rates not divisible by 10, pieces that start inside a
    sub-block), against np.add.reduceat over the squares."""
    rng = np.random.default_rng(6)
    for channels in (1, 2):
        meter = L.LoudnessMeter(sr, channels)
        for n in (1000, 1, sr // 10, 3 * sr + 17, 5):
            z = rng.standard_normal((n, channels)) if channels > 1 else rng.standard_normal(n)
            starts = meter._part_starts(n)
            want = np.add.reduceat(z * z, starts, axis=0)
            np.testing.assert_allclose(meter._split_energy(z), want, rtol=1e-12)
            meter._add_sums(want if channels > 1 else want[:, None], n)


def test_block_estimate_is_within_its_margin_of_the_exact_values():
    """PeakMap estimates whole blocks of inter-sample values with one banded float32 product per block; this
    catches a misplaced window (off by a frame, a phase in the wrong column, the zeros outside the signal missing
    at either end) against the float64 values at every frame, within the margin the scan allows."""
    x = np.stack([speechlike(0.5, seed=9), -0.5 * speechlike(0.5, seed=10)], axis=1)
    x[:40] = x[-40:] = 0.9 * np.sign(np.sin(np.arange(40)))[:, None]  # loud, jagged ends
    starts = np.arange(0, len(x), L.PEAK_BLOCK)
    estimate = L._block_estimate(x, starts).ravel()[: len(x)]
    exact = L._inter_sample_peaks(x.astype(np.float64), np.arange(len(x)))
    assert np.abs(estimate - exact).max() <= L._ESTIMATE_MARGIN * np.abs(x).max()
    inner = starts[3:-3]  # windows inside x: no padding
    np.testing.assert_array_equal(L._block_estimate(x, inner), L._block_estimate(x, starts)[3:-3])


def test_stretch_runs_follow_every_rows_sub_block():
    """The gain passes sum each stretch's corrections per run of rows in one 100 ms sub-block, found from the pieces'
    ends; this catches a run starting at the wrong row or a sub-block left out, against the sub-block of every row."""
    for sr in (24000, 44100, 11025):
        lo = np.array([0, 2399, 5000, 5100, 30000])
        hi = np.array([1200, 2401, 5100, 9700, 30001])
        group = L._Stretches(lo, hi, np.zeros((int((hi - lo).sum()), 1)), np.zeros((int((hi - lo).sum()), 1)), sr)
        j = (10 * L._ranges(lo, hi) + 4) // sr
        np.testing.assert_array_equal(j[group.runs], group.sub_blocks)
        piece_starts = np.isin(np.arange(len(j)), group.start)  # a run also starts with every piece
        new_run = np.flatnonzero((np.diff(j, prepend=-1) != 0) | piece_starts)
        np.testing.assert_array_equal(group.runs, new_run)


def test_limited_blocks_in_place_equal_a_separate_output():
    """The in-memory writer limits its own frames in place (out is the source); this catches a limited row read
    after its block was overwritten (gained twice) against writing to a separate array."""
    x = np.stack([speechlike(3, seed=11, clicks=20), speechlike(3, seed=12, clicks=20)], axis=1)
    gain = -16.0 - L.integrated_loudness(x, SR) + 3.0
    want = np.concatenate(list(L.limited_blocks(x, SR, gain, block=5000)))
    peaks = L.PeakMap(x)
    assert len(L._limiter_runs(peaks, *L._limiter_setup(SR, gain, -1.0))[0]) > 100  # the limiter acts
    same = x.copy()
    for _ in L.limited_blocks(same, SR, gain, block=5000, out=same):
        pass
    np.testing.assert_array_equal(same, want)


def _serial(monkeypatch):
    """No work handed to the helper thread: every `in_parallel` runs both parts on the calling thread."""
    monkeypatch.setattr(L, "PARALLEL_MIN_FRAMES", 1 << 62)


def _eager(monkeypatch):
    """Everything handed to the helper thread that can be, however small."""
    monkeypatch.setattr(L, "PARALLEL_MIN_FRAMES", 1)


def test_threaded_gain_passes_equal_single_threaded(monkeypatch):
    """The gain passes filter the stretches' channels and K(d) on two threads, and the guess's limiter gain beside
    the stretches; this catches a channel's state or result swapped or lost between threads, against one thread
    (bit for bit: each channel is the same lfilter call either way)."""
    x = np.stack([speechlike(6, seed=7, clicks=20), 0.7 * speechlike(6, seed=8, clicks=20)], axis=1)
    meter = L.LoudnessMeter(SR, 2)
    meter.add(x)
    sub = meter.sub_block_energies().sum(axis=1)
    g, ceiling, half = L._limiter_setup(SR, -16.0 - meter.integrated() + 2.0, -1.0)
    results = []
    for mode in (_serial, _eager):
        mode(monkeypatch)
        peaks = L.PeakMap(x)
        exact = L._limited_sub_energies(x, SR, g, ceiling, half, peaks, sub)
        guess = L._estimated_sub_energies(SR, g, ceiling, half, peaks, sub)
        gain = L.solve_gain(x, SR, meter=meter, peaks=L.PeakMap(x))
        results.append((exact, guess, gain))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_k_filter_channels_on_two_threads_equal_one_call():
    """channel_map runs half the channels on the helper thread; this catches results returned out of channel order
    or a state mixed up, against one lfilter call over all channels (to rounding: same recursion per channel)."""
    x = np.random.default_rng(4).standard_normal((3, 50000)) * [[0.3], [0.05], [1.0]]
    state = np.random.default_rng(5).standard_normal((3, L.K_ORDER)) * 0.01
    want, want_state = L.k_filter(x, SR, state)
    got = L.channel_map(lambda c: L.k_filter(x[c], SR, state[c]), 3, x.shape[1])
    np.testing.assert_allclose(np.stack([y for y, _ in got]), want, rtol=0, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(np.stack([s for _, s in got]), want_state, rtol=0, atol=1e-12)


def test_limited_blocks_in_pairs_equal_one_at_a_time(monkeypatch):
    """limited_blocks computes every other block on the helper thread; this catches a block yielded out of order or
    limited with the rows of its neighbour, in place and into a new array, against one thread."""
    x = np.stack([speechlike(3, seed=11, clicks=20), speechlike(3, seed=12, clicks=20)], axis=1)
    gain = -16.0 - L.integrated_loudness(x, SR) + 3.0
    _serial(monkeypatch)
    want = np.concatenate(list(L.limited_blocks(x, SR, gain, block=5001)))
    _eager(monkeypatch)
    assert len(L._limiter_runs(L.PeakMap(x), *L._limiter_setup(SR, gain, -1.0))[0]) > 100  # the limiter acts
    np.testing.assert_array_equal(np.concatenate(list(L.limited_blocks(x, SR, gain, block=5001))), want)
    same = x.copy()
    for _ in L.limited_blocks(same, SR, gain, block=5001, out=same):
        pass
    np.testing.assert_array_equal(same, want)


def _mix(turns, **options):
    writer = EpisodeWriter(None, stereo=True, **options)
    with writer:
        writer.add_silence(0.3)  # silence first: the peak bounds' seam at the very start
        for k, audio in enumerate(turns):
            writer.add_turn(audio, pan=(-0.5, 0.5, None)[k % 3])
            if k == 1:
                writer.add_silence(0.05)
    return writer


def test_background_metering_and_frame_buffer_equal_the_plain_writer(monkeypatch):
    """The writer meters turns on the helper thread (in order, behind one another), skips the zeros of silences, and
    pans into one growing buffer; this catches a piece metered out of order or twice, a silence metered or bounded
    differently from its zeros, or rows lost when the buffer grows, against one thread, a small buffer, and the
    meter and bounds fed the frames themselves."""
    turns = [speechlike(1.5 + 0.5 * k, seed=30 + k, clicks=8) for k in range(5)]
    _serial(monkeypatch)
    plain = _mix(turns)
    _eager(monkeypatch)
    monkeypatch.setattr(EpisodeWriter, "INITIAL_FRAMES", 5000)  # grows several times
    threaded = _mix(turns)
    np.testing.assert_array_equal(threaded.audio.samples, plain.audio.samples)
    assert [s.start for s in threaded.segments] == [s.start for s in plain.segments]
    # the meter and bounds of the writer against both fed the frames themselves
    writer = EpisodeWriter(None, stereo=True, normalize=False)
    writer.add_silence(0.3)
    writer.add_turn(turns[0], pan=-0.5)
    writer.add_silence(0.05)
    writer.add_turn(turns[1], pan=0.5)
    frames = writer._source().copy()
    meter, bounds = L.LoudnessMeter(SR, 2), L.PeakBounds(2)
    meter.add(frames)
    bounds.add(frames)
    # the writer meters mono * gains in float64, the frames are rounded to float32: energies agree to ~1e-7
    np.testing.assert_allclose(writer._metered().sub_block_energies(), meter.sub_block_energies(), rtol=1e-6,
                               atol=1e-12)
    for got, want in zip(writer._peaks.bounds(), bounds.bounds()):  # from the mono samples: to float32 rounding
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    writer.abort()


@pytest.mark.parametrize("n", [1, 2, 3, 31, 32, 33, 100, 1000])
def test_silence_shortcuts_equal_adding_zeros(n):
    """LoudnessMeter.add_silence and PeakBounds.add_silence skip the zeros; this catches a block maximum or a second
    difference at the seam (before and after the silence) lost, against adding the zeros as frames."""
    rng = np.random.default_rng(n)
    for lead in (0, 5, 40):
        a, b = L.PeakBounds(2), L.PeakBounds(2)
        ma, mb = L.LoudnessMeter(SR, 2), L.LoudnessMeter(SR, 2)
        head = rng.uniform(-0.5, 0.5, (lead, 2)).astype(np.float32)
        tail = rng.uniform(-0.5, 0.5, (37, 2)).astype(np.float32)
        for bound, m in ((a, ma), (b, mb)):
            bound.add(head)
            m.add(head)
        a.add(np.zeros((n, 2), np.float32))
        ma.add(np.zeros((n, 2), np.float32))
        b.add_silence(n)
        mb.add_silence(n)
        for bound, m in ((a, ma), (b, mb)):
            bound.add(tail)
            m.add(tail)
        for got, want in zip(b.bounds(), a.bounds()):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(mb.sub_block_energies(), ma.sub_block_energies())


def test_background_metering_failure_is_raised_by_the_writer(monkeypatch):
    """A failure of the meter on the helper thread must not be lost: the next write or close() raises it."""
    _eager(monkeypatch)
    writer = EpisodeWriter(None, stereo=True)

    def broken(*args):
        raise RuntimeError("meter failed")

    monkeypatch.setattr(writer._meter, "add_panned", broken)
    with pytest.raises(RuntimeError, match="meter failed"):
        with writer:
            writer.add_turn(speechlike(1.0, seed=1), pan=0.2)
            writer.add_turn(speechlike(1.0, seed=2), pan=-0.2)
    assert writer.audio is None


def test_peak_scan_in_two_halves_equals_one_thread(monkeypatch):
    """PeakMap scans the second half of its read blocks on the helper thread; this catches frames lost, repeated or
    out of order where the halves meet, against one thread."""
    x = np.stack([speechlike(3, seed=5), speechlike(3, seed=6)], axis=1) * 1.5
    found = []
    for mode in (_serial, _eager):
        mode(monkeypatch)
        found.append(L.PeakMap(x, block=4000).over(0.2))
    assert len(found[0][0]) > 100
    for a, b in zip(*found):
        np.testing.assert_array_equal(a, b)


class _Frames:
    """An array-like source (not a numpy array): PeakMap reads it in blocks, as it reads a file."""

    ndim = 2

    def __init__(self, x):
        self.x, self.shape = x, x.shape

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index]


def test_peak_scan_of_an_array_by_candidates_equals_reading_blocks(monkeypatch):
    """PeakMap scans a numpy array a number of candidate blocks at a time, wherever they lie (one call may span
    many frames), and the float32 estimate zeroes the windows past the ends without a padded copy; this catches a
    chunk that drops or repeats candidates, or a window at either end estimated from the wrong samples, against
    reading the same frames in blocks."""
    x = np.stack([speechlike(3, seed=13), 0.8 * speechlike(3, seed=14)], axis=1) * 1.5
    x[:3] = x[-3:] = [[0.95, -0.9]]  # loud first and last frames: windows past both ends are candidates
    for chunk in (L.PeakMap.SCAN_CANDIDATES, 7):
        monkeypatch.setattr(L.PeakMap, "SCAN_CANDIDATES", chunk)
        for level in (0.2, 0.5):
            got = L.PeakMap(x).over(level)
            want = L.PeakMap(_Frames(x), block=4000).over(level)
            assert len(got[0]) > 10 and got[0][0] == 0 and got[0][-1] >= len(x) - 3
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    frames, values = L.PeakMap(x).over(0.3)
    envelope = L._true_peak_envelope(x)
    np.testing.assert_array_equal(frames, np.flatnonzero(envelope > 0.3))
    np.testing.assert_array_equal(values, envelope[frames])


def test_sparse_sliding_minimum_equals_the_full_one():
    """The limiter's sliding minimum visits only the windows around the frames that need less than unit gain; this
    catches a window missed or reaching past either end (low values in the first and last frames, values closer
    together than a window, a window wider than the signal), bit for bit against the pass over every frame."""
    rng = np.random.default_rng(15)
    for n, count, half in [(5000, 12, 120), (300, 3, 120), (2000, 40, 7), (50, 1, 2)]:
        r = np.ones(n)
        lows = np.unique(np.concatenate([[0, n - 1], rng.integers(0, n, count)]))
        r[lows] = rng.uniform(0.1, 1.0, len(lows))
        r[lows[len(lows) // 2]] = 1.0  # a frame only at the ceiling
        np.testing.assert_array_equal(L._smooth_ratio(r, half, lows), L._smooth_ratio(r, half))
        width = 2 * half + 1
        np.testing.assert_array_equal(L._sparse_sliding_min(n, lows, r[lows], min(width, n)),
                                      L._sliding_min(r, min(width, n)))


def test_add_turn_without_copy_fades_the_callers_samples_and_mixes_the_same():
    """add_turn(copy=False) fades the turn in the caller's own array instead of a copy (as render does with
    join_pieces' result); this catches the two ways mixing differently, and the default touching the caller's
    samples."""
    turns = [(speechlike(1.2, seed=k), -0.3 if k % 2 else 0.3) for k in range(4)]
    outputs = []
    for copy in (True, False):
        given = [x.copy() for x, _ in turns]
        writer = EpisodeWriter(None, stereo=True)
        for x, (_, pan) in zip(given, turns):
            writer.add_turn(x, speaker="A", text="x", pan=pan, copy=copy)
        writer.close()
        outputs.append(writer.audio.samples)
        changed = [not np.array_equal(x, original) for x, (original, _) in zip(given, turns)]
        assert changed == [not copy] * len(turns)
    np.testing.assert_array_equal(outputs[1], outputs[0])
