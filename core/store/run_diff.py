"""Two runs side by side: the settings they differ in, and whether they read the same data
(by the hash each run recorded), in one line."""

from __future__ import annotations

import json

IGNORED = ("out", "resume")   # where a run saves says nothing about how it trained


def runs_difference(a: dict, b: dict) -> str:
    """`a` and `b` are whole workspace rows of runs (core.store.database.Store.run)."""
    first, second = json.loads(a["config"]), json.loads(b["config"])
    changed = [f"{name} {first.get(name)} → {second.get(name)}"
               for name in sorted(set(first) | set(second))
               if name not in IGNORED and first.get(name) != second.get(name)]
    if a["model"] != b["model"]:
        changed.insert(0, f"model {a['model']} → {b['model']}")
    if a["data_hash"] and a["data_hash"] == b["data_hash"]:
        data = "the same data"
    elif a["data_hash"] and b["data_hash"]:
        data = "different data"
    else:
        data = "data not comparable (a hash is missing)"
    settings = "; ".join(changed) if changed else "the same settings"
    return f"run #{a['id']} vs #{b['id']}: {settings}; {data}"
