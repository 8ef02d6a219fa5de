import json
import pickle

import pytest
import torch

from asr.checkpoint import METADATA_FILE, WEIGHTS_FILE, load_checkpoint, save_checkpoint
from asr.errors import CheckpointError, ConfigError


def outputs(model, feats):
    return model(feats, torch.tensor([feats.shape[1]]))[0]


def test_save_then_load_gives_identical_outputs(tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    again = load_checkpoint(tiny_checkpoint / METADATA_FILE)
    feats = torch.randn(1, 40, 80)
    torch.testing.assert_close(outputs(loaded.model, feats), outputs(again.model, feats), rtol=0, atol=0)
    assert loaded.provenance == {"note": "test"}
    assert loaded.tokenizer.tokens[0] == "<blk>"


def test_resave_round_trip_is_exact(tiny_checkpoint, tmp_path):
    first = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tmp_path / "copy", first.model, first.features, first.normalizer, first.tokenizer)
    second = load_checkpoint(tmp_path / "copy")
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_float16_storage_halves_the_weights_and_loads_into_a_float32_network(tiny_checkpoint, tmp_path):
    full = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tmp_path / "half", full.model, full.features, full.normalizer, full.tokenizer, storage="float16")
    half = load_checkpoint(tmp_path / "half")
    meta = json.loads((tmp_path / "half" / METADATA_FILE).read_text())
    assert meta["weights"]["storage"] == "float16"
    assert meta["weights"]["bytes"] < 0.6 * (tiny_checkpoint / WEIGHTS_FILE).stat().st_size
    for (name, a), (_, b) in zip(full.model.state_dict().items(), half.model.state_dict().items()):
        assert b.dtype == a.dtype, name
        assert torch.equal(b, a.half().to(a.dtype) if a.is_floating_point() else a), name
    feats = torch.randn(1, 40, 80)
    torch.testing.assert_close(outputs(half.model, feats), outputs(full.model, feats), rtol=0, atol=1e-2)
    assert json.loads((tiny_checkpoint / METADATA_FILE).read_text())["weights"]["storage"] == "float32"


def test_an_unknown_storage_is_refused_and_writes_nothing(tiny_checkpoint, tmp_path):
    ckpt = load_checkpoint(tiny_checkpoint)
    with pytest.raises(ConfigError, match="'int4'"):
        save_checkpoint(tmp_path / "x", ckpt.model, ckpt.features, ckpt.normalizer, ckpt.tokenizer, storage="int4")
    assert not (tmp_path / "x").exists()


def test_overwrite_is_atomic_and_leaves_no_temporaries(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tiny_checkpoint, ckpt.model, ckpt.features, ckpt.normalizer, ckpt.tokenizer, {"n": 2})
    assert load_checkpoint(tiny_checkpoint).provenance == {"n": 2}
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["tiny"]


def test_truncated_weights_are_refused(tiny_checkpoint):
    weights = tiny_checkpoint / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tiny_checkpoint)


def test_edited_weights_are_refused(tiny_checkpoint):
    weights = tiny_checkpoint / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 does not match"):
        load_checkpoint(tiny_checkpoint)


def test_corrupt_json_is_refused(tiny_checkpoint):
    meta = tiny_checkpoint / METADATA_FILE
    meta.write_text(meta.read_text()[:50])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tiny_checkpoint)


def test_foreign_and_future_formats_are_refused(tiny_checkpoint):
    meta_path = tiny_checkpoint / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match="version 99 is not supported"):
        load_checkpoint(tiny_checkpoint)
    meta_path.write_text(json.dumps({"architectures": ["SomethingElse"]}))
    with pytest.raises(CheckpointError, match="not a checkpoint of this toolkit"):
        load_checkpoint(tiny_checkpoint)


def test_a_pickle_is_never_loaded(tiny_checkpoint, tmp_path):
    """A pickle posing as the weights (with a matching hash) is rejected, not unpickled."""
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    weights = tiny_checkpoint / WEIGHTS_FILE
    weights.write_bytes(pickle.dumps(Exploit()))
    meta_path = tiny_checkpoint / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    import hashlib

    meta["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    meta["weights"]["bytes"] = weights.stat().st_size
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_checkpoint(tiny_checkpoint)
    assert not marker.exists()


def test_weights_that_do_not_fit_the_config_are_refused(tiny_checkpoint):
    meta_path = tiny_checkpoint / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    meta["model"]["hidden_size"] = 32
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit the model config"):
        load_checkpoint(tiny_checkpoint)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere: no such checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


def test_checkpoint_is_readable_by_others(tiny_checkpoint):
    """Bundled models are installed for every user: no owner-only files."""
    assert tiny_checkpoint.stat().st_mode & 0o005 == 0o005
    for path in tiny_checkpoint.iterdir():
        assert path.stat().st_mode & 0o004


@pytest.mark.parametrize("name", ["../tiny2/model.safetensors", "/etc/passwd", "..", "", 7, "sub/model.safetensors"])
def test_a_weights_file_outside_the_checkpoint_is_refused(tiny_checkpoint, name):
    meta_path = tiny_checkpoint / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    meta["weights"]["file"] = name
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="plain file name in the checkpoint"):
        load_checkpoint(tiny_checkpoint)


def test_a_weights_link_out_of_the_checkpoint_is_refused(tiny_checkpoint, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    (tiny_checkpoint / WEIGHTS_FILE).rename(outside)
    (tiny_checkpoint / WEIGHTS_FILE).symlink_to(outside)
    with pytest.raises(CheckpointError, match="leads outside the checkpoint directory"):
        load_checkpoint(tiny_checkpoint)


FULL_DISK_SCRIPT = """
import resource, signal, sys
from asr.checkpoint import load_checkpoint, save_checkpoint
from asr.errors import CheckpointError
ck = load_checkpoint(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # no file may grow past 4 KiB: a full disk
try:
    save_checkpoint(sys.argv[1], ck.model, ck.features, ck.normalizer, ck.tokenizer, {"note": "new"})
except CheckpointError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_failing_write_leaves_the_previous_checkpoint_intact(tiny_checkpoint):
    """A real write failure from the kernel (a file-size limit standing in for a full disk)."""
    import subprocess
    import sys

    before = load_checkpoint(tiny_checkpoint).model.state_dict()
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK_SCRIPT, str(tiny_checkpoint)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3, result.stderr
    assert f"cannot write checkpoint {tiny_checkpoint}" in result.stdout
    assert "the previous one there is unchanged" in result.stdout
    after = load_checkpoint(tiny_checkpoint)
    assert after.provenance == {"note": "test"}
    assert all(torch.equal(before[k], v) for k, v in after.model.state_dict().items())
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["tiny"]  # no temporaries left


def test_a_name_too_long_for_the_file_system_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot be used as a checkpoint"):
        load_checkpoint(tmp_path / ("k" * 300))
