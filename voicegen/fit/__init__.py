"""Fitting a voice to a recording (`fit_voice`): alignment (`align`), the objective (`objective`), the search
(`fitting`)."""

from .fitting import FitReport, fit_voice, nearest_voice, prepare_recording
from .objective import Weights

__all__ = ["FitReport", "Weights", "fit_voice", "nearest_voice", "prepare_recording"]
