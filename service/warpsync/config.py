"""Configuration: frozen dataclasses, one per stage, loaded from TOML.

Each stage owns its section dataclass (`warpsync.ingest.config.IngestConfig`, ...); this module composes
them into `Config` and holds the one loader. Every field has a default (the embedded defaults that
`warpsync serve` runs with when no file is given) and a docstring with its unit. An unknown key, a wrong
type or a value outside a `Literal` is a `ConfigError` that names the key and the file.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .engine.config import EngineConfig
from .errors import ConfigError
from .ingest.config import IngestConfig
from .publish.config import PublishConfig
from .speech.config import SpeechConfig


@dataclass(frozen=True)
class ControlConfig:
    endpoint: str = "tcp://127.0.0.1:5557"
    """Control socket (ROUTER) address: `ping`, `status`, `streams`, stream open/close handshakes."""
    open_timeout_s: float = 5.0
    """How long an `open` waits for the owning ingest worker to install the stream, seconds."""
    max_close_timeout_s: float = 60.0
    """Upper bound on the `timeout_s` a `close` request may ask for, seconds."""


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    """Serve the Prometheus HTTP endpoint (`/metrics`)."""
    host: str = "127.0.0.1"
    """Address the Prometheus HTTP endpoint binds to."""
    port: int = 9108
    """Prometheus HTTP port; 0 binds an ephemeral port (reported in the ready line)."""


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check `value` against annotation `tp`; convert TOML shapes (list -> tuple, int -> float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: [{key}] must be a table")
        return _build(tp, value, key, where)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where}: {key} = {value!r} is not one of {allowed}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: {key} has an invalid value")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key} must be a list")
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {key} must be a table")
        vt = args[1] if len(args) == 2 else Any
        return types.MappingProxyType({k: _coerce(v, vt, f"{key}.{k}", where) for k, v in value.items()})
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: {key} must be {_type_name(tp)}, got {value!r}")
        return value
    raise ConfigError(f"{where}: {key} has unsupported type {_type_name(tp)}")  # a bug in a section dataclass


def _build(cls: type, table: Mapping[str, Any], prefix: str, where: str) -> Any:
    hints = typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]))
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(table) - names)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"{where}: unknown key {key!r} (known keys here: {', '.join(sorted(names))})")
    kwargs = {
        name: _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name, where)
        for name, value in table.items()
    }
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: [{prefix or 'top level'}] {exc}") from None
    return obj


def from_mapping(table: Mapping[str, Any], where: str = "<config>") -> Config:
    """Build a `Config` from a parsed TOML table; missing keys take their defaults."""
    return _build(Config, table, "", where)


def load(path: str | Path | None) -> Config:
    """Load a TOML config file; `None` gives the embedded defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        with p.open("rb") as fh:
            table = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return from_mapping(table, str(p))


def parse_overrides(items: Iterable[str], cls: type, where: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings as fields of the section dataclass `cls` (for command-line flags such as the
    benchmarks' ``--content``), checked as a config file's keys are: VALUE is a TOML value (``4``, ``0.3``,
    ``false``, ``"x"``) or a Python literal (``False``). An unknown key or a wrong type is a `ConfigError` naming
    `where`."""
    table: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"{where} {item!r}: expected KEY=VALUE")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ConfigError(f"{where} {item!r}: {text!r} is not a value") from None
        table[key.strip()] = value
    built = _build(cls, table, "", where)
    return {k: getattr(built, k) for k in table}


def to_mapping(obj: Any) -> dict[str, Any]:
    """The config as plain dicts/lists (for `warpsync config show` and the round-trip test)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = to_mapping(v)
        elif isinstance(v, tuple):
            out[f.name] = [to_mapping(x) if dataclasses.is_dataclass(x) else x for x in v]
        elif isinstance(v, Mapping):
            out[f.name] = {k: (to_mapping(x) if dataclasses.is_dataclass(x) else x) for k, x in v.items()}
        elif v is not None:
            out[f.name] = v
    return out
