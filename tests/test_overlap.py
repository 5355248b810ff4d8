"""`Renderer.overlap`: a turn pipelined by token batch renders what the whole turn renders.

The pipelined turn queues each token batch's frame batches before the next token batch's token phase (on CUDA on a
second stream; tests/test_cuda.py has that case). What changes is only which items share a frame batch, so durations
are identical and audio equal within `assert_batch_invariant`'s tolerance. The renderer's statistics show that the
path really ran (frame batches per token batch), so the test cannot pass by falling back to the whole turn."""

import pytest

from voicegen import Performance
from voicegen.renderer import Renderer


@pytest.fixture(scope="module")
def renderer(network):
    renderer = Renderer(network, "cpu", Performance(max_batch_frames=4096, max_batch_tokens=64))
    yield renderer
    renderer.close()


def test_a_pipelined_turn_renders_as_the_whole_turn(renderer, shared_items, render_counted, assert_batch_invariant,
                                                    monkeypatch):
    """conftest's four SHARED items: with a budget of 64 padded tokens two token batches, with 4096 frames the whole
    turn one frame batch."""
    whole, piped = shared_items(), shared_items()
    stats = render_counted(renderer, whole)
    assert (stats["token_batches"], stats["frame_batches"]) == (2, 1)  # one frame batch across both token batches
    monkeypatch.setattr(renderer, "overlap", True)
    stats = render_counted(renderer, piped)
    assert (stats["token_batches"], stats["frame_batches"]) == (2, 2)  # each token batch's items apart
    assert stats["items"] == 4 and stats["valid_frames"] == sum(int(it.durations.sum()) for it in whole)
    for a, b in zip(piped, whole):
        assert a.durations.tolist() == b.durations.tolist()
        assert_batch_invariant(a.audio, b.audio)


def test_one_token_batch_takes_the_plain_path(renderer, shared_items, render_counted, monkeypatch):
    """A turn of one token batch has nothing to overlap: the switch changes nothing, bit for bit."""
    plain, switched = shared_items(2), shared_items(2)
    renderer.render(plain)
    monkeypatch.setattr(renderer, "overlap", True)
    stats = render_counted(renderer, switched)
    assert stats["token_batches"] == 1
    for a, b in zip(switched, plain):
        assert (a.audio == b.audio).all()
