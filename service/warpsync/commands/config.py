"""`warpsync config show|check [FILE]`: print the effective configuration as TOML, or validate a file."""

from __future__ import annotations

import argparse
from typing import Any

from .. import config


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def dump_toml(table: dict[str, Any], prefix: str = "") -> str:
    """Minimal TOML writer for the config shape (scalars, lists of scalars, nested tables)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    out = "\n".join(lines)
    for k, v in table.items():
        if isinstance(v, dict):
            name = f"{prefix}.{k}" if prefix else k
            body = dump_toml(v, name)
            out += f"\n\n[{name}]\n{body}" if out else f"[{name}]\n{body}"
    return out.strip("\n")


def _run(args: argparse.Namespace) -> int:
    cfg = config.load(args.file)
    if args.action == "show":
        print(dump_toml(config.to_mapping(cfg)))
    else:
        print(f"{args.file or '<embedded defaults>'}: ok")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show or check the configuration")
    p.add_argument("action", choices=["show", "check"])
    p.add_argument("file", nargs="?", default=None, help="TOML file (default: embedded defaults)")
    p.set_defaults(func=_run)
