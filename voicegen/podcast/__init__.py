"""Podcast-style multi-speaker scripts: parse a script, cast voices, mix rendered turns into an episode
with natural gaps and broadcast loudness (-16 LUFS, -1 dBTP), and write subtitles.

The mixing works without the model: `mix_script` / `write_episode` take a batch function
`synthesize_many([(text, voice, speed), ...]) -> [Audio, ...]`; `voicegen.podcast.render` plugs in the engine.
"""

from .loudness import LoudnessMeter, integrated_loudness, normalize, true_peak_dbtp
from .mix import EpisodeWriter, Gaps, RenderedTurn, join_pieces, mix_script, mix_turns, write_episode
from .script import CastMember, Pause, Script, Turn, cast_voices
from .subtitles import parse_srt, parse_vtt, to_json_transcript, to_srt, to_vtt, write_subtitles, write_text

__all__ = [
    "CastMember", "EpisodeWriter", "Gaps", "LoudnessMeter", "Pause", "RenderedTurn", "Script", "Turn",
    "cast_voices", "integrated_loudness", "join_pieces", "mix_turns", "normalize", "parse_srt", "parse_vtt",
    "mix_script", "to_json_transcript", "to_srt", "to_vtt", "true_peak_dbtp", "write_episode",
    "write_subtitles", "write_text",
]
