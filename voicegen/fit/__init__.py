"""Fitting a voice to a recording (`fit_voice`): alignment (`align`), the objective (`objective`), the search
(`fitting`)."""

from .fitting import FitReport, align_recording, fit_voice, nearest_voice, prepare_recording, render_chunks
from .objective import Weights

__all__ = ["FitReport", "Weights", "align_recording", "fit_voice", "nearest_voice", "prepare_recording", "render_chunks"]
