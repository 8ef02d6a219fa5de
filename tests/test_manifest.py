import pytest

from asr.errors import ManifestError
from asr.manifest import Utterance, read_manifest, write_manifest


def test_relative_audio_is_relative_to_the_manifest(tmp_path):
    (tmp_path / "sub").mkdir()
    manifest = tmp_path / "sub" / "m.jsonl"
    manifest.write_text(
        '{"audio": "a.wav", "text": "HI", "duration": 1.5, "speaker": "s1"}\n\n{"audio": "/abs/b.wav", "text": "YO", "id": "b"}\n'
    )
    first, second = read_manifest(manifest)
    assert first.audio == tmp_path / "sub" / "a.wav"
    assert first.id == "m-1" and first.duration == 1.5 and first.speaker == "s1"
    assert str(second.audio) == "/abs/b.wav" and second.id == "b"


def test_write_then_read_round_trips(tmp_path):
    utts = [Utterance(tmp_path / "audio" / "x.flac", "HELLO", "x", 2.0, "spk")]
    write_manifest(tmp_path / "data" / "m.jsonl", utts)
    assert '"audio": "../audio/x.flac"' in (tmp_path / "data" / "m.jsonl").read_text()
    assert read_manifest(tmp_path / "data" / "m.jsonl") == [
        Utterance((tmp_path / "data" / "../audio/x.flac"), "HELLO", "x", 2.0, "spk")
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"audio": "a.wav"}', r"needs string fields 'audio' \(a path\) and 'text'"),
        ('{"audio": "", "text": "A"}', r"needs string fields 'audio' \(a path\) and 'text'"),
        ('{"audio": "a.wav", "text": "A", "duration": "long"}', "'duration' must be a non-negative number"),
        ('{"audio": "a.wav", "text": "A", "duration": -1}', "'duration' must be a non-negative number"),
        ('{"audio": "a.wav", "text": "A", "speaker": 7}', "'speaker' must be a string"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text('{"audio": "a.wav", "text": "OK"}\n' + line + "\n")
    with pytest.raises(ManifestError, match=rf"bad.jsonl:2: {message}"):
        read_manifest(manifest)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "none.jsonl")


def test_a_name_too_long_for_the_file_system_is_named(tmp_path):
    too_long = tmp_path / ("m" * 300 + ".jsonl")  # over NAME_MAX (255): the OS refuses even to look
    with pytest.raises(ManifestError, match=r"m{300}\.jsonl: "):
        read_manifest(too_long)


def test_a_line_that_is_not_utf8_is_named(tmp_path):
    manifest = tmp_path / "bad.jsonl"
    manifest.write_bytes(b'{"audio": "a.wav", "text": "OK"}\n{"audio": "\xff.wav", "text": "X"}\n')
    with pytest.raises(ManifestError, match=r"bad.jsonl:2: not UTF-8 text"):
        read_manifest(manifest)
