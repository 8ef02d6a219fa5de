"""Exceptions raised at the library's public boundaries.

Every error names the file or value at fault so that a user running a batch job can tell which
input to fix.
"""

from __future__ import annotations


class ASRError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class AudioError(ASRError):
    """An audio file or array cannot be used: missing, unreadable, empty, too short or not finite."""


class CheckpointError(ASRError):
    """A checkpoint is missing, truncated, edited, of a foreign format or of an unknown version."""


class ConfigError(ASRError):
    """A configuration file or value is invalid (unknown key, wrong type, out of range)."""


class ManifestError(ASRError):
    """A manifest line is malformed (not JSON, missing ``audio`` or ``text``)."""


class TrainingError(ASRError):
    """Training cannot go on: its loss or gradients keep coming out non-finite."""
