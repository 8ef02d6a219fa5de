"""Endpointing: when a stream closes the current segment and starts the next.

Rules in the manner of Kaldi's and sherpa-onnx's endpointers, counted in the model's output
frames from the CTC blanks: a frame where blank wins is silence (or a pause within a word).

1. Trailing silence of ``silence_after_speech`` seconds once something was decoded ends the
   segment (the speaker paused after saying something).
2. Trailing silence of ``silence_without_speech`` seconds with nothing decoded ends it too, so a
   silent stream does not grow one endless segment.
3. A segment of ``max_segment`` seconds ends whatever the audio holds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EndpointConfig:
    """Endpoint rules in seconds (see the module docstring)."""

    silence_after_speech: float = 0.8
    silence_without_speech: float = 5.0
    max_segment: float = 20.0
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("silence_after_speech", "silence_without_speech", "max_segment"):
            if getattr(self, name) <= 0:
                raise ValueError(f"EndpointConfig.{name} must be positive, got {getattr(self, name)}")


@dataclass
class EndpointState:
    """Counts for the current segment, in output frames."""

    frames: int = 0
    trailing_blanks: int = 0
    decoded_anything: bool = False

    def update(self, blank_frames: list[bool], emitted: bool) -> None:
        """Account for new frames: ``blank_frames[i]`` says whether frame ``i`` was blank."""
        self.frames += len(blank_frames)
        self.decoded_anything = self.decoded_anything or emitted
        for blank in blank_frames:
            self.trailing_blanks = self.trailing_blanks + 1 if blank else 0


def is_endpoint(state: EndpointState, config: EndpointConfig, seconds_per_frame: float) -> bool:
    """Whether the segment counted in ``state`` should end now."""
    if not config.enabled:
        return False
    silence = state.trailing_blanks * seconds_per_frame
    if state.decoded_anything and silence >= config.silence_after_speech:
        return True
    if not state.decoded_anything and silence >= config.silence_without_speech:
        return True
    return state.frames * seconds_per_frame >= config.max_segment
