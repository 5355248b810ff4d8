"""Batch plans, seeds, the voice bank and the worker: the engine's parts that need no weights, tested alone."""

import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from voicegen.batching import (
    STATIC_BATCH_OVERHEAD,
    TOKEN_BUCKETS,
    bucket_for,
    frame_batches,
    frame_buckets,
    round_up_pow2,
    static_rows,
    token_batches,
)
from voicegen.seeds import check_seed, derive_seed
from voicegen.weights import VoiceBank, VoiceError, parse_blend
from voicegen.worker import BatchWorker, WorkerClosed


def test_finer_frame_buckets_keep_every_octave_and_a_smaller_step():
    """`frame_buckets(per_octave=4)`: every power of two from 32 to 8192 is still a bucket (each octave starts
    exactly), the steps above the small sizes are about 2^(1/4), sizes that round alike appear once, and the default
    (2 per octave) is what it was. Catches an octave that drifts off its power of two and duplicated shapes (a CUDA
    graph captured twice for nothing)."""
    fine = frame_buckets(per_octave=4)
    assert frame_buckets(per_octave=2) == frame_buckets()
    assert {32 * 2**k for k in range(9)} <= set(fine) and fine[-1] == 8192
    assert all(b > a for a, b in zip(fine, fine[1:])) and all(b % 16 == 0 for b in fine)
    assert all(1.1 < b / a < 1.23 for a, b in zip(fine, fine[1:]) if a >= 512)  # 2^(1/4) = 1.19, rounded up
    assert set(frame_buckets()) < set(fine)


def test_frame_buckets_grow_by_sqrt2_in_multiples_of_16():
    """Every bucket is 32 sqrt(2)^k rounded up to a multiple of 16 (catches float drift that rounded the powers of
    two up by 16: 80 for 64, ..., 8208 for 8192, steps of up to x1.67 where x1.41 was meant)."""
    buckets = frame_buckets()
    assert buckets[0] == 32 and buckets[-1] == 8192
    assert all(b % 16 == 0 for b in buckets)
    for k, b in enumerate(buckets):
        exact = 32 * 2 ** (k / 2)
        assert exact <= b < exact + 16, (k, b)
    assert {64, 128, 256, 512, 1024, 2048, 4096} <= set(buckets)
    assert all(1.3 < b / a < 1.45 for a, b in zip(buckets[5:], buckets[6:]))  # small ones: rounding to 16 dominates
    assert all(b > a for a, b in zip(buckets, buckets[1:]))
    assert bucket_for(33, buckets) == buckets[1] and bucket_for(32, buckets) == 32
    assert bucket_for(9000, (32, 64)) == 9216  # past the largest: a multiple of 256


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(1, 510), min_size=1, max_size=60), budget=st.integers(64, 20000),
       max_rows=st.one_of(st.none(), st.integers(1, 16)))
def test_token_batches_cover_every_item_once_within_the_budget(counts, budget, max_rows):
    batches = token_batches(counts, budget, max_rows)
    assert sorted(i for b in batches for i in b) == list(range(len(counts)))
    for b in batches:
        longest = bucket_for(max(counts[i] for i in b) + 2, TOKEN_BUCKETS)
        assert len(b) == 1 or longest * len(b) <= budget  # a single item may exceed it
        assert max_rows is None or len(b) <= max_rows
    order = [counts[i] for b in batches for i in b]
    assert order == sorted(order)  # shortest first: batches hold items of similar length


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(st.integers(1, 3000), min_size=1, max_size=60), budget=st.integers(32, 20000),
       static=st.booleans(), min_rows=st.sampled_from([1, 2]))
def test_frame_batches_cover_every_item_once_at_a_shape_that_fits(frames, budget, static, min_rows):
    """Catches an item lost or rendered twice, a batch over its budget, a shape outside the warm-up's set, and (with
    min_rows=2, the compiled graphs' setting) a one-row shape, which would cost a second compile."""
    buckets = frame_buckets()
    plans = frame_batches(frames, budget, buckets, static=static, min_rows=min_rows)
    assert sorted(i for p in plans for i in p.items) == list(range(len(frames)))
    for p in plans:
        longest = max(frames[i] for i in p.items)
        assert p.rows >= len(p.items) and p.frames >= longest
        if static:
            assert p.frames == bucket_for(longest, buckets)
            assert p.rows in static_rows(p.frames, budget, min_rows) and p.rows >= min_rows
        else:
            assert len({bucket_for(frames[i], buckets) for i in p.items}) == 1  # one bucket per batch
            assert (p.rows, p.frames) == (len(p.items), longest)  # exact: no padding beyond the longest item
        assert len(p.items) == 1 or p.padded_frames <= max(budget, p.frames * min_rows)
    if static:  # rows left empty only where the items ran out: in one batch at most
        assert sum(p.rows > len(p.items) for p in plans) <= 1


def _by_bucket(frames, budget, buckets, min_rows):
    """The plan static shapes had before: each bucket's items on their own (the exact plan's groups), rows rounded
    up to a power of two -> [(rows, frames)]."""
    plans = []
    for p in frame_batches(frames, budget, buckets, static=False):
        bucket = bucket_for(p.frames, buckets)
        plans.append((max(min_rows, min(max(1, budget // bucket), round_up_pow2(len(p.items)))), bucket))
    return plans


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.integers(1, 2500), min_size=1, max_size=80), budget=st.sampled_from([512, 4096, 16384]),
       min_rows=st.sampled_from([1, 2]))
def test_static_plan_costs_no_more_than_grouping_by_bucket(frames, budget, min_rows):
    """The static planner's objective (padded frames + STATIC_BATCH_OVERHEAD per batch) is never worse than the
    plan that gives each bucket batches of its own (filling a batch's empty rows with shorter items never costs
    more), and on the throughput corpus's kind of mix it is much better (test below)."""
    buckets = frame_buckets()
    plans = frame_batches(frames, budget, buckets, static=True, min_rows=min_rows)
    ours = sum(p.padded_frames + STATIC_BATCH_OVERHEAD for p in plans)
    theirs = sum(rows * bucket + STATIC_BATCH_OVERHEAD for rows, bucket in _by_bucket(frames, budget, buckets, min_rows))
    assert ours <= theirs


def test_static_plan_fills_empty_rows_with_shorter_items():
    """40 items of one bucket and 3 shorter ones: grouping by bucket pads the 40 to 64 rows and runs the 3 apart
    (4 rows of a shorter bucket); the planner takes 32 + 16 rows and rides the 3 along in rows that were empty."""
    frames = [180] * 40 + [130] * 3
    plans = frame_batches(frames, 16384, frame_buckets(), static=True, min_rows=2)
    assert sum(p.padded_frames for p in plans) == 48 * 192 < 64 * 192 + 4 * 144
    assert all(any(frames[i] == 180 for i in p.items) for p in plans)  # no batch of the short ones alone


def test_derived_seeds_are_stable_distinct_and_in_range():
    assert derive_seed(0, 0) == derive_seed(0, 0)
    seeds = {derive_seed(s, i, j) for s in range(5) for i in range(20) for j in range(3)}
    assert len(seeds) == 300 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(-1, 2) != derive_seed(1, 2)
    assert derive_seed(7, 1, 0) != derive_seed(7, 0, 1)  # the path's order matters


@pytest.mark.parametrize("bad", [True, 1.5, "3", [1]])
def test_seed_must_be_an_integer(bad):
    with pytest.raises(ValueError, match="seed must be an integer"):
        check_seed(bad)


def test_blends_parse_and_mix_tables_by_weight():
    assert parse_blend("a") == [("a", 1.0)]
    assert parse_blend(" a:2 + b:1 ") == [("a", 2.0), ("b", 1.0)]
    for bad, message in (("a:x", "bad blend weight"), ("a:-1", "positive"), ("a+", "empty voice name")):
        with pytest.raises(VoiceError, match=message):
            parse_blend(bad)
    a, b = torch.zeros(510, 256), torch.ones(510, 256)
    bank = VoiceBank({"a": a, "b": b}, builtin=False)
    assert bank.names == ["a", "b"]
    assert torch.equal(bank.table("a:3+b:1"), torch.full((510, 256), 0.25))
    with pytest.raises(VoiceError, match="unknown voice 'c'; known voices: a, b"):
        bank.table("a+c")


def test_worker_batches_waiting_jobs_and_fails_them_after_close():
    seen, started, gate = [], threading.Event(), threading.Event()

    def render(items):
        started.set()
        gate.wait(5)
        seen.append(list(items))

    worker = BatchWorker(render)
    first = worker.submit([1])
    assert started.wait(5)
    waiting = [worker.submit([k]) for k in (2, 3)]  # queued while the first turn is blocked
    gate.set()
    for f in [first, *waiting]:
        f.result(5)
    assert seen == [[1], [2, 3]]  # the two waiting jobs shared one turn
    worker.close(5)
    with pytest.raises(WorkerClosed):
        worker.submit([4])


def test_worker_takes_urgent_jobs_first_caps_turns_and_skips_cancelled_jobs():
    seen, started, gate = [], threading.Event(), threading.Event()

    def render(items):
        started.set()
        gate.wait(5)
        seen.append(list(items))

    worker = BatchWorker(render, max_items=2)
    futures = [worker.submit(["busy"])]
    assert started.wait(5)
    futures += [worker.submit(["late-1"], priority=1), worker.submit(["late-2"], priority=1)]
    dropped = worker.submit(["dropped"], priority=1)
    futures += [worker.submit(["first"], priority=0)]
    assert worker.pending == 4 and dropped.cancel()
    gate.set()
    for f in futures:
        f.result(5)
    assert seen == [["busy"], ["first", "late-1"], ["late-2"]]  # priority order, at most two items a turn
    assert dropped.cancelled()
    worker.close(5)


def test_a_waiting_caller_renders_in_its_own_thread_and_takes_other_jobs_along():
    """`run` renders in the caller's thread (catches a regression to handing every turn to a worker thread), and
    jobs submitted meanwhile share its turn or the next."""
    threads, seen = [], []

    def render(items):
        threads.append(threading.current_thread())
        seen.append(list(items))

    worker = BatchWorker(render)
    worker.run(["a"])
    assert threads == [threading.current_thread()] and seen == [["a"]]
    waiting = worker._enqueue(["b"], 0)  # another caller's job, queued before this caller's turn starts
    worker.run(["c"])
    assert threads[1] is threading.current_thread() and seen[1] == ["b", "c"] and waiting.done()
    worker.close(5)


def test_an_interrupt_in_the_rendering_caller_requeues_the_other_callers_jobs():
    """Ctrl-C in the thread that renders stops its own job only; another caller's job in the same turn is put
    back and rendered later (catches an interrupt that strands or fails other callers)."""
    calls = []

    def render(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise KeyboardInterrupt

    worker = BatchWorker(render)
    other = worker._enqueue(["other"], 0)  # queued by another caller, not yet rendered
    with pytest.raises(KeyboardInterrupt):
        worker.run(["mine"])
    assert calls == [["other", "mine"]] and not other.done()
    worker.run(["later"])  # the next turn renders the requeued job too
    other.result(5)
    assert calls[1] == ["other", "later"]
    worker.close(5)
