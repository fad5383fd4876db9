from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from warpsync import config
from warpsync.commands.config import dump_toml
from warpsync.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_embedded_defaults_round_trip_through_toml():
    cfg = config.Config()
    text = dump_toml(config.to_mapping(cfg))
    assert config.from_mapping(tomllib.loads(text)) == cfg


def test_default_toml_matches_embedded_defaults():
    """configs/default.toml documents the embedded defaults: it must not drift from the dataclasses."""
    assert config.load(ROOT / "configs" / "default.toml") == config.Config()


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[ingest]\nworkerz = 2\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*ingest\.workerz"):
        config.load(p)


def test_wrong_type_and_literal_are_errors(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text("[ingest]\nworkers = 'two'\n")
    with pytest.raises(ConfigError, match="ingest.workers must be an integer"):
        config.load(p)
    p.write_text("[ingest]\nfull_policy = 'yolo'\n")
    with pytest.raises(ConfigError, match="full_policy = 'yolo' is not one of"):
        config.load(p)
    p.write_text("[ingest]\nworker_mode = 'thread'\n")
    with pytest.raises(ConfigError, match="worker_mode = 'thread' is not one of"):
        config.load(p)


def test_a_value_outside_its_range_is_an_error(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text("[engine.content]\nacquire_coincidence = 1.5\n")
    with pytest.raises(ConfigError, match=r"t\.toml.*acquire_coincidence must be within \[0, 1\], got 1.5"):
        config.load(p)
    p.write_text("[engine.content]\nacquire_coincidence = 0.0\n")
    assert config.load(p).engine.content.acquire_coincidence == 0.0
    p.write_text("[engine.content]\nacquire_highpass_s = -0.1\n")
    with pytest.raises(ConfigError, match=r"t\.toml.*acquire_highpass_s must be >= 0, got -0.1"):
        config.load(p)
    p.write_text("[engine.clock]\nslope_quantile = 1.0\n")
    with pytest.raises(ConfigError, match=r"t\.toml.*slope_quantile must be within \[0, 1\), got 1.0"):
        config.load(p)


def test_values_override_defaults(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text("[ingest]\nworkers = 3\nbuffer_s = 5\n")
    cfg = config.load(p)
    assert cfg.ingest.workers == 3 and cfg.ingest.buffer_s == 5.0
    assert dataclasses.replace(cfg, ingest=config.Config().ingest) == config.Config()


def test_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


def test_command_line_overrides_are_checked_as_config_keys_are():
    """`parse_overrides`: KEY=VALUE flags (the benchmarks' --content) take TOML values or Python literals, are
    coerced by the field's type, and an unknown key or a wrong type is a ConfigError naming the flag."""
    from warpsync.config import parse_overrides
    from warpsync.engine.config import ContentConfig

    got = parse_overrides(
        ["kinetic_window_s=6", "audit_search=False", "sensor_bridge=true"], ContentConfig, "--content"
    )
    assert got == {"kinetic_window_s": 6.0, "audit_search": False, "sensor_bridge": True}
    assert isinstance(got["kinetic_window_s"], float)
    for bad, words in (("no_such_key=1", "unknown key"), ("audit_search=3", "must be bool"), ("hop_s", "KEY=VALUE")):
        with pytest.raises(ConfigError, match=words) as exc:
            parse_overrides([bad], ContentConfig, "--content")
        assert "--content" in str(exc.value)
