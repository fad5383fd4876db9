"""configs/grafana-dashboard.json plots only metrics the service registers (a renamed metric would leave an
empty panel), and every service metric family has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from warpsync.engine.config import EngineConfig
from warpsync.engine.stage import EngineStage
from warpsync.metrics import ServiceMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "configs" / "grafana-dashboard.json"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _registered() -> set[str]:
    reg = CollectorRegistry()
    ServiceMetrics(reg)
    EngineStage(EngineConfig(), reg)
    names: set[str] = set()
    for fam in reg.collect():
        names.add(fam.name)
        names.update(fam.name + s for s in SUFFIXES)
    return names


def _plotted() -> set[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    return {m for e in exprs for m in re.findall(r"\b((?:warpsync|process|python)_[a-z0-9_]+)\b", e)}


def test_every_plotted_metric_is_registered():
    plotted, registered = _plotted(), _registered()
    assert plotted, "no metric found in the dashboard's expressions"
    assert plotted <= registered, sorted(plotted - registered)


def test_every_service_metric_family_has_a_panel():
    reg = CollectorRegistry()
    ServiceMetrics(reg)
    families = {f.name for f in reg.collect() if f.name.startswith("warpsync_")}
    plotted = _plotted()
    missing = {f for f in families if not any(p == f or p.startswith(f + "_") for p in plotted)}
    assert not missing, sorted(missing)
