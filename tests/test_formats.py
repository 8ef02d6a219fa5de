"""Output formats: valid SRT and WebVTT, cues of readable size, times that never go backwards."""

from __future__ import annotations

import json
import re

import pytest

from asr.formats import FORMATS, CueConfig, render, render_named, segment_line, subtitle_cues, timestamp, wrap
from asr.transcript import Segment, Transcript, Word

SRT_BLOCK = re.compile(r"^(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n(.+)$", re.DOTALL)
VTT_TIME = re.compile(r"^(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)$")


def seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def transcript_of(words: list[tuple[str, float, float]]) -> Transcript:
    ws = tuple(Word(w, s, e, 0.9) for w, s, e in words)
    text = " ".join(w for w, _, _ in words)
    return Transcript(text, words[-1][2] + 1 if words else 1.0, ws, (Segment(text, 0.0, ws[-1].end, ws),))


def long_transcript() -> Transcript:
    """Two minutes of words, 0.4 s each, with a long pause every 15 words."""
    words, t = [], 0.0
    for i in range(300):
        words.append((f"WORD{i}", t, t + 0.3))
        t += 0.4 + (1.5 if i % 15 == 14 else 0.0)
    return transcript_of(words)


def test_timestamps_format_hours_minutes_seconds_millis():
    assert timestamp(3725.0456, ",") == "01:02:05,046"
    assert timestamp(0.0, ".") == "00:00:00.000"
    assert timestamp(-0.2, ".") == "00:00:00.000"


def test_wrap_fills_lines_up_to_the_width():
    assert wrap(["AAAA", "BBB", "CC"], 8) == ["AAAA BBB", "CC"]
    assert wrap(["AVERYLONGWORD"], 4) == ["AVERYLONGWORD"]


def test_cues_respect_length_duration_and_pauses():
    config = CueConfig()
    cues = subtitle_cues(long_transcript(), config)
    assert " ".join(c.text for c in cues) == long_transcript().text
    for cue in cues:
        assert len(cue.lines) <= config.max_lines
        assert all(len(line) <= config.max_line_chars for line in cue.lines)
        assert cue.end - cue.start <= config.max_duration
    # A 1.5 s pause always ends a cue: WORD14 closes one and WORD15 opens the next.
    assert any(c.text.endswith("WORD14") for c in cues) and any(c.text.startswith("WORD15") for c in cues)


def check_srt(srt: str) -> int:
    """Assert ``srt`` is valid SubRip with cue times that never go backwards; return its cues."""
    blocks = srt.strip("\n").split("\n\n")
    previous_end = 0.0
    for number, block in enumerate(blocks, start=1):
        match = SRT_BLOCK.match(block)
        assert match, block
        assert int(match.group(1)) == number
        start, end = seconds(match.group(2)), seconds(match.group(3))
        assert previous_end <= start <= end
        previous_end = end
    return len(blocks)


def check_vtt(vtt: str) -> int:
    """Assert ``vtt`` is valid WebVTT with cue times that never go backwards; return its cues."""
    assert vtt.startswith("WEBVTT\n\n")
    blocks = vtt[len("WEBVTT\n\n") :].strip("\n").split("\n\n")
    previous_end = 0.0
    for block in blocks:
        time_line, *text = block.split("\n")
        match = VTT_TIME.match(time_line)
        assert match and text, block
        start, end = seconds(match.group(1)), seconds(match.group(2))
        assert previous_end <= start <= end
        previous_end = end
    return len(blocks)


def test_srt_is_valid_and_monotonic():
    assert check_srt(render(long_transcript(), "srt")) > 10


def test_vtt_is_valid_and_monotonic():
    assert check_vtt(render(long_transcript(), "vtt")) > 10


def test_overlapping_word_times_are_made_monotonic():
    # Word times from separately decoded segments can overlap at the seam.
    transcript = transcript_of([("A", 0.0, 1.0), ("B", 3.0, 4.5), ("C", 4.2, 5.0)])
    config = CueConfig(max_line_chars=1, max_lines=1)
    cues = subtitle_cues(transcript, config)
    assert [c.text for c in cues] == ["A", "B", "C"]
    assert cues[2].start >= cues[1].end


def test_tsv_and_json_and_txt():
    transcript = transcript_of([("HELLO", 0.5, 0.9), ("WORLD", 1.0, 1.6)])
    assert render(transcript, "tsv") == "start\tend\ttext\n500\t1600\tHELLO WORLD\n"
    assert render(transcript, "txt") == "HELLO WORLD\n"
    data = json.loads(render(transcript, "json"))
    assert data["words"][1] == {"word": "WORLD", "start": 1.0, "end": 1.6, "confidence": 0.9}


def test_without_word_times_each_segment_is_a_cue():
    transcript = Transcript("A B", 4.0, (), (Segment("A", 0.0, 2.0), Segment("B", 2.5, 4.0)))
    assert render(transcript, "srt") == "1\n00:00:00,000 --> 00:00:02,000\nA\n\n2\n00:00:02,500 --> 00:00:04,000\nB\n"


def test_empty_transcript_gives_empty_but_valid_files():
    empty = Transcript("", 1.0)
    assert render(empty, "srt") == ""
    assert render(empty, "vtt") == "WEBVTT\n\n"
    assert render(empty, "tsv") == "start\tend\ttext\n"


def test_unknown_format_is_refused():
    assert "srt" in FORMATS
    with pytest.raises(ValueError, match="unknown output format 'doc'"):
        render(Transcript("", 1.0), "doc")


def test_several_inputs_on_one_stream_are_told_apart_in_each_formats_way():
    transcript = transcript_of([("HELLO", 0.5, 0.9), ("WORLD", 1.0, 1.6)])
    first, second = (render_named(transcript, "vtt", name, first=name == "a.wav") for name in ("a.wav", "b\n-->.wav"))
    assert first == "WEBVTT\n\nNOTE a.wav\n\n" + render(transcript, "vtt").removeprefix("WEBVTT\n\n")
    assert second.startswith("\nWEBVTT\n\nNOTE b ->.wav\n\n")  # a name cannot end the comment or fake a cue
    assert check_vtt(first.replace("NOTE a.wav\n\n", "")) == 1
    srt = render_named(transcript, "srt", "a.wav", first=True)
    assert srt.startswith("==> a.wav <==\n") and check_srt(srt.split("\n", 1)[1]) == 1
    assert (
        render_named(transcript, "tsv", "a.wav", first=True)
        == "input\tstart\tend\ttext\na.wav\t500\t1600\tHELLO WORLD\n"
    )
    assert render_named(transcript, "tsv", "b.wav", first=False) == "b.wav\t500\t1600\tHELLO WORLD\n"
    assert json.loads(render_named(transcript, "json", "a.wav", first=False))["input"] == "a.wav"


def test_a_live_segment_is_one_line_of_text_or_json():
    segment = transcript_of([("HELLO", 0.5, 0.9), ("WORLD", 1.0, 1.6)]).segments[0]
    assert segment_line(segment, "txt") == "HELLO WORLD\n"
    record = json.loads(segment_line(segment, "json"))
    assert record == {
        "start": 0.0, "end": 1.6, "text": "HELLO WORLD",
        "words": [{"word": "HELLO", "start": 0.5, "end": 0.9, "confidence": 0.9},
                  {"word": "WORLD", "start": 1.0, "end": 1.6, "confidence": 0.9}],
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown live output format 'srt'"):
        segment_line(segment, "srt")
