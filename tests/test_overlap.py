"""`Renderer.overlap`: a turn pipelined by token batch renders what the whole turn renders.

The pipelined turn queues each token batch's frame batches before the next token batch's token phase (on CUDA on a
second stream; tests/test_cuda.py has that case). What changes is only which items share a frame batch, so durations
are identical and audio equal within `assert_batch_invariant`'s tolerance. The renderer's statistics show that the
path really ran (frame batches per token batch), so the test cannot pass by falling back to the whole turn."""

import pytest

from voicegen import Performance
from voicegen.renderer import Item, Renderer
from voicegen.weights import style_for

# four items of 12-16 tokens (one token bucket: 32) whose 66-78 frames share a frame bucket: with a budget of 64
# padded tokens they make two token batches, and with 4096 frames the whole turn one frame batch
TOKENS = [50, 83, 54, 156, 57, 16, 65, 86, 54, 16, 43, 55, 83, 61, 156, 62]
ITEMS = [(16, "jf_alpha", 1.0), (14, "jm_kumo", 1.0), (16, "jf_nezumi", 1.15), (12, "jf_tebukuro", 0.9)]


def _items(voice_tables):
    return [Item(TOKENS[:n], style_for(voice_tables[v], n), speed, seed=i) for i, (n, v, speed) in enumerate(ITEMS)]


def _delta(renderer, items):
    before = dict(vars(renderer.stats), shapes=set(renderer.stats.shapes))
    renderer.render(items)
    after = vars(renderer.stats)
    return {k: after[k] - before[k] for k in before}


@pytest.fixture(scope="module")
def renderer(network):
    renderer = Renderer(network, "cpu", Performance(max_batch_frames=4096, max_batch_tokens=64))
    yield renderer
    renderer.close()


def test_a_pipelined_turn_renders_as_the_whole_turn(renderer, voice_tables, assert_batch_invariant, monkeypatch):
    whole, piped = _items(voice_tables), _items(voice_tables)
    stats = _delta(renderer, whole)
    assert (stats["token_batches"], stats["frame_batches"]) == (2, 1)  # one frame batch across both token batches
    monkeypatch.setattr(renderer, "overlap", True)
    stats = _delta(renderer, piped)
    assert (stats["token_batches"], stats["frame_batches"]) == (2, 2)  # each token batch's items apart
    assert stats["items"] == 4 and stats["valid_frames"] == sum(int(it.durations.sum()) for it in whole)
    for a, b in zip(piped, whole):
        assert a.durations.tolist() == b.durations.tolist()
        assert_batch_invariant(a.audio, b.audio)


def test_one_token_batch_takes_the_plain_path(renderer, voice_tables, monkeypatch):
    """A turn of one token batch has nothing to overlap: the switch changes nothing, bit for bit."""
    plain, switched = _items(voice_tables)[:2], _items(voice_tables)[:2]
    renderer.render(plain)
    monkeypatch.setattr(renderer, "overlap", True)
    stats = _delta(renderer, switched)
    assert stats["token_batches"] == 1
    for a, b in zip(switched, plain):
        assert (a.audio == b.audio).all()
