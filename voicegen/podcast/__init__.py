"""Podcast-style multi-speaker scripts: parse a script and cast voices (`script`), mix rendered turns into an
episode with natural gaps and broadcast loudness (`mix`), and drive the engine window by window (`render`).

Loudness (`voicegen.loudness`) and subtitles (`voicegen.subtitles`) work on any audio and live beside `audio`.
"""

from .mix import EpisodeWriter, Gaps, RenderedTurn, join_pieces, mix_turns
from .render import Episode, mix_script, render_episode, render_script, write_episode
from .script import CastMember, Pause, Script, Turn, cast_voices

__all__ = [
    "CastMember", "Episode", "EpisodeWriter", "Gaps", "Pause", "RenderedTurn", "Script", "Turn", "cast_voices",
    "join_pieces", "mix_script", "mix_turns", "render_episode", "render_script", "write_episode",
]
