"""Configs written back to TOML read back equal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from asr.config import dump_toml, load_toml
from asr.errors import ConfigError
from asr.train.config import TrainConfig, load_train_config


def test_a_recipe_config_round_trips(tmp_path):
    config = load_train_config("recipes/english/conf/bilstm.toml")
    config = dataclasses.replace(config, speed_factors=(1.0,), exp_dir='exp "quoted" \\ dir')
    path = tmp_path / "copy.toml"
    path.write_text(dump_toml(config))
    assert load_toml(TrainConfig, path) == config
    assert "[model]" in path.read_text() and "[data]" in path.read_text()


def test_values_toml_cannot_hold_are_refused():
    @dataclasses.dataclass(frozen=True)
    class Odd:
        value: object = dataclasses.field(default_factory=dict)

    with pytest.raises(ConfigError, match="value"):
        dump_toml(Odd())


@pytest.mark.parametrize("path", sorted(Path("recipes/english/conf").glob("*.toml")), ids=lambda p: p.name)
def test_every_english_recipe_config_loads(path):
    """The chained runs' configs extend their parents (``base``); each must still read whole."""
    config = load_train_config(path)
    assert Path(config.exp_dir).parent == Path("recipes/english/exp").resolve()
    assert Path(config.data.train_manifest).parent == Path("recipes/english/data").resolve()
    assert "speechocean762" in config.data.attribution
