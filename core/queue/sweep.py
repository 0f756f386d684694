"""Sweeps: a setting given several values (`--sweep lr=1e-4,3e-4 --sweep lora_r=4,8`) makes a
grid of runs, each in its own folder named by what differs; `sweep_rows` is the table that
compares them.

    axes = [parse_sweep("lr=1e-4,3e-4"), parse_sweep("lora_r=4,8")]
    for combo in grid(axes): combo.values, combo.name      # {"lr": 1e-4, "lora_r": 4}, "lr=1e-4,lora_r=4"
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.base.errors import UserError
from core.base.settings import TRAIN_SETTINGS, Setting, by_name
from core.queue.items import RunQueue, sweep_settings
from core.store.database import Store

TRUE, FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")


@dataclass
class SweepAxis:
    setting: Setting
    values: list[Any]
    texts: list[str]                 # each value as typed: the runs' folder names use them


@dataclass
class Combination:
    values: dict[str, Any]           # setting name → value
    name: str                        # "lr=1e-4,lora_r=4"


def parse_value(setting: Setting, text: str, shown: str) -> Any:
    if setting.kind is bool:
        if text.lower() not in TRUE + FALSE:
            raise UserError(f"{shown}: {text!r} is not on or off")
        return text.lower() in TRUE
    try:
        value = setting.parse(text)
        setting.check(value)
    except UserError as exc:
        raise UserError(f"{shown}: {exc}") from None
    return value


def parse_sweep(spec: str, shown: str | None = None) -> SweepAxis:
    """`SETTING=V1,V2,…` as an axis of the grid; a one-line error naming the setting."""
    shown = shown or f"--sweep {spec}"
    name, sep, values = spec.partition("=")
    settings = by_name(TRAIN_SETTINGS)
    setting = settings.get(name.strip().replace("-", "_"))
    if not sep:
        raise UserError(f"{shown}: write SETTING=VALUE,VALUE,… (e.g. lr=1e-4,3e-4)")
    if setting is None:
        swept = ", ".join(s.name for s in TRAIN_SETTINGS if s.cli and s.name != "fsdp")
        raise UserError(f"{shown}: {name.strip()!r} is not a training setting (one of: {swept})")
    if not setting.cli or setting.name == "fsdp":   # how the runs are run, not what they learn
        raise UserError(f"{shown}: {setting.named} cannot be swept: give it one value")
    texts = [t.strip() for t in values.split(",")]
    if not all(texts):
        raise UserError(f"{shown}: an empty value between commas")
    parsed = [parse_value(setting, t, shown) for t in texts]
    if len({json.dumps(v) for v in parsed}) < len(parsed):
        raise UserError(f"{shown}: a value given twice")
    return SweepAxis(setting, parsed, texts)


def grid(axes: list[SweepAxis]) -> list[Combination]:
    """Every combination of the axes' values, the first axis varying slowest."""
    names = [axis.setting.name for axis in axes]
    if len(set(names)) < len(names):
        raise UserError(f"--sweep: {next(n for n in names if names.count(n) > 1)} is swept twice")
    combos = []
    for picks in itertools.product(*(range(len(axis.values)) for axis in axes)):
        values = {axis.setting.name: axis.values[i] for axis, i in zip(axes, picks)}
        name = ",".join(f"{axis.setting.name}={axis.texts[i]}".replace("/", "_")
                        for axis, i in zip(axes, picks))
        combos.append(Combination(values, name))
    return combos


def sweep_rows(store: Store, sweep: int) -> list[dict]:
    """One row per run of the sweep, in the order they were queued: the settings that
    differ, its best eval loss, steps, seconds, status — those still queued included."""
    varied = list((sweep_settings(store, sweep) or {}).keys())
    runs = sorted((r for r in store.runs(limit=100_000) if r["sweep"] == sweep), key=lambda r: r["id"])
    rows = []
    for run in runs:   # `runs()` reads a run whose process is gone as killed
        config = json.loads((store.run(run["id"]) or {}).get("config") or "{}")
        best = store.best_eval(run["id"])
        rows.append({"run": run["id"], "settings": {k: config.get(k) for k in varied},
                     "best_eval_loss": best, "steps": run["steps"], "status": run["status"],
                     "seconds": _seconds(run["time"], run["ended"]),
                     "peak_memory": store.peak_memory(run["id"])})
    for item in RunQueue(store).items():
        if item.sweep == sweep and item.run_id is None:
            rows.append({"run": None, "settings": {k: item.config.get(k) for k in varied},
                         "best_eval_loss": None, "steps": 0, "status": item.state, "seconds": None,
                         "peak_memory": None})
    return rows


def best_row(rows: list[dict]) -> dict | None:
    scored = [r for r in rows if r["best_eval_loss"] is not None and math.isfinite(r["best_eval_loss"])]
    return min(scored, key=lambda r: r["best_eval_loss"]) if scored else None


def _seconds(start: str, end: str | None) -> float | None:
    if not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
