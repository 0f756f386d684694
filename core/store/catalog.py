"""The models a user can load, found without typing a path: the demo, every run's saved model
(adapters marked with their base), the models in the Hugging Face cache with their sizes,
and the models used recently."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.store.database import Store

RECENT = 8


@dataclass(frozen=True)
class ModelChoice:
    kind: str                         # demo | run | cache | recent
    name: str                         # what loading is given: a hub id, a folder, "demo"
    label: str                        # one line for the list
    trained: str | None = None        # a run's saved folder: its weights on top of `name`
    run_id: int | None = None         # the workspace's run, for a run's model


def run_models(store: Store | None) -> list[ModelChoice]:
    """Each run whose saved model is still there, newest first."""
    from core.data.source import source_name
    from core.model.lora import is_adapter_folder

    found = []
    for row in store.runs(limit=200) if store is not None else []:
        out = row["out"]
        if not out or row["replaced_by"] or not Path(out).is_dir():
            continue
        loss = f" · eval {row['eval_loss']:.3f}" if row["eval_loss"] is not None else ""
        kind = f"adapter on {row['model']}" if is_adapter_folder(out) else row["model"]
        label = (f"run #{row['id']} · {row['time'][:16].replace('T', ' ')} · {source_name(row['train'])} · "
                 f"{row['steps']} steps{loss} · {kind} → {out}")
        found.append(ModelChoice("run", row["model"], label, trained=out, run_id=row["id"]))
    return found


def cached_models() -> list[ModelChoice]:
    """The causal LMs (any model repository) in the Hugging Face cache, most recently used
    first. A cache that is missing or unreadable lists nothing."""
    try:
        from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir().repos
    except Exception:   # no cache yet, or one another tool left half-written
        return []
    models = sorted((r for r in repos if r.repo_type == "model"), key=lambda r: -r.last_accessed)
    return [ModelChoice("cache", r.repo_id, f"{r.repo_id} · {r.size_on_disk_str} in the cache")
            for r in models]


def recent_models(store: Store | None) -> list[ModelChoice]:
    """Models generated with or trained recently (hub ids and folders), newest first."""
    if store is None:
        return []
    names: list[str] = []
    for row in store.history(limit=200) + store.runs(limit=50):
        if row["model"] not in names and row["model"] != "demo":
            names.append(row["model"])
    return [ModelChoice("recent", name, f"{name} · used recently") for name in names[:RECENT]]


def model_choices(store: Store | None) -> list[ModelChoice]:
    """Everything the model picker offers, each model once."""
    choices = [ModelChoice("demo", "demo", "demo · the tiny offline model, built locally")]
    seen = {"demo"}
    for choice in run_models(store) + cached_models() + recent_models(store):
        key = choice.trained or choice.name
        if key not in seen:
            seen.add(key)
            choices.append(choice)
    return choices
