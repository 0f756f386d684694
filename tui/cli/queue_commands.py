"""`runs`, `queue`, and `train --queue / --sweep`: runs queued for the headless runner (one
run, or a sweep's grid), the queue listed and steered, the runs listed — a sweep's as one
table — and every run's curves exported for a spreadsheet."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from core.base.errors import UserError
from core.base.safe_write import check_output_folder
from core.base.settings import TRAIN_SETTINGS
from core.data.source import source_name
from core.model.lora import is_adapter_folder
from core.queue.items import RunQueue, new_sweep
from core.queue.runner import ensure_runner, log_path
from core.queue.sweep import Combination, grid, parse_sweep, sweep_rows
from core.store.workspace import runs_dir
from core.training.config import TrainConfig, check_paths
from tui.cli.commands import open_store, print_json
from tui.cli.options import given
from tui.render.summaries import sweep_lines


def _absolute(path: str | None) -> str | None:
    """A data path as the runner (started elsewhere) finds it; a hub name stays a name."""
    if not path:
        return None
    local = Path(path).expanduser()
    return str(local.resolve()) if local.exists() else path


def queued_configs(args) -> tuple[list[tuple[dict, str]], dict[str, list] | None]:
    """The runs `train --queue / --sweep` asks for, each checked as `train` would check it:
    (settings and paths, name in the sweep) — and the sweep's axes, if it is one."""
    if args.dry_run:
        raise UserError("--dry-run: not with --queue or --sweep (try it on one run first)")
    chosen = given(args, TRAIN_SETTINGS)
    if is_adapter_folder(args.model):
        chosen.setdefault("lora", True)
    axes = [parse_sweep(spec) for spec in args.sweep or []]
    combos = grid(axes) if axes else [Combination({}, "")]
    swept = {axis.setting.name: axis.values for axis in axes} if axes else None
    out = check_output_folder(args.out) if args.out else None   # a sweep's: one folder per run in it
    paths = {"train": _absolute(args.train), "test": _absolute(args.test),
             "resume": _absolute(args.resume)}
    runs = []
    for combo in combos:
        settings = {**chosen, **combo.values}
        run_out = str(out / combo.name if swept is not None else out) if out else None
        config = TrainConfig(train=paths["train"] or args.train, test=paths["test"], out=run_out,
                             resume=paths["resume"], **settings).validate()
        check_paths(config)
        runs.append(({**settings, "device": args.device, "dtype": args.dtype,
                      **{k: v for k, v in {**paths, "out": run_out}.items() if v}}, combo.name))
    return runs, swept


def queue_train(args) -> int:
    """`train --queue` (and any `--sweep`): checked, queued, and the runner started."""
    runs, swept = queued_configs(args)
    store = open_store()
    if store is None:
        raise UserError("--queue: the queue lives in the workspace database, which cannot be used")
    sweep = new_sweep(store, swept) if swept is not None else None
    queue = RunQueue(store)
    if sweep is not None and not args.out:   # a folder of the sweep's own, in the runs folder
        parent = check_output_folder(runs_dir() / f"sweep-{sweep}")
        runs = [({**settings, "out": str(parent / name)}, name) for settings, name in runs]
    for settings, name in runs:
        queue.add(args.model, settings, sweep=sweep, name=name or None)
    pid = ensure_runner()
    what = f"sweep {sweep}: {len(runs)} runs" if sweep is not None else "1 run"
    paused = " — the queue is paused (`rugpt-tui queue --resume`)" if queue.paused() else ""
    print(f"queued {what}; the runner (process {pid}) starts them in turn{paused}. "
          f"`rugpt-tui queue` lists them, `rugpt-tui runs` shows them as they end.")
    for settings, name in runs:
        if name:
            print(f"  {name} → {settings['out']}")
    return 0


def cmd_queue(args) -> int:
    if args.runner:
        from core.queue.runner import Runner
        from core.store.database import Store

        return Runner(Store.open()).run()
    store = open_store()
    if store is None:
        return 1
    queue = RunQueue(store)
    if args.remove is not None and not queue.remove(args.remove):
        raise UserError(f"--remove {args.remove}: no waiting item {args.remove} in the queue")
    if args.clear:
        print(f"{queue.clear()} waiting runs taken out of the queue", file=sys.stderr)
    if args.pause:
        queue.pause()
        print("paused: the current run goes on to its end, the next waits for --resume", file=sys.stderr)
    if args.resume:
        queue.resume()
        if queue.waiting():
            print(f"resumed: the runner (process {ensure_runner()}) goes on", file=sys.stderr)
    items = queue.items()
    if args.json:
        print_json([item.as_json() for item in items])
        return 0
    for item in items:
        run = f" (run #{item.run_id})" if item.run_id else ""
        sweep = f" sweep {item.sweep}" if item.sweep else ""
        print(f"{item.id:<4} {item.state:<8}{run} {item.model}  "
              f"{source_name(str(item.config.get('train')))}{sweep}  {item.name or ''}".rstrip())
    if not items:
        print("the queue is empty" + (" (paused)" if queue.paused() else "")
              + f"; the runner's log: {log_path()}", file=sys.stderr)
    return 0


def cmd_runs(args) -> int:
    store = open_store()
    if store is None:   # said on stderr; nothing to list
        return 1
    if args.export:
        return export_csv(store)
    if args.sweep is not None:
        return sweep_table(store, args.sweep, args.json)
    rows = store.runs(limit=args.limit)
    if args.json:
        print_json([{"id": r["id"], "time": r["time"], "model": r["model"], "train": r["train"],
                      "steps": r["steps"], "eval_loss": r["eval_loss"], "status": r["status"],
                      "out": r["out"], "replaced_by": r["replaced_by"], "data_hash": r["data_hash"],
                      "error": r["error"], "sweep": r["sweep"],
                      "peak_memory": store.peak_memory(r["id"])} for r in rows])
        return 0
    for r in rows:
        loss = f"eval {r['eval_loss']:.3f}" if r["eval_loss"] is not None else "no eval"
        saved = f" → {r['out']}" if r["out"] else ""
        if r["replaced_by"]:
            saved += f" (replaced there by run #{r['replaced_by']})"
        sweep = f"  sweep {r['sweep']}" if r["sweep"] else ""
        print(f"#{r['id']:<4} {r['time'][:19].replace('T', ' ')}  {r['model']}  {source_name(r['train'])}  "
              f"{r['steps']} steps  {loss}  {r['status']}{sweep}{saved}")
    if not rows:
        print("no training runs yet", file=sys.stderr)
    return 0


def sweep_table(store, sweep: int, as_json: bool) -> int:
    rows = sweep_rows(store, sweep)
    if not rows:
        raise UserError(f"--sweep {sweep}: no such sweep in the workspace")
    if as_json:
        print_json(rows)
        return 0
    for line in sweep_lines(rows):
        print(line)
    return 0


def export_csv(store) -> int:
    """Every run's curves, one row per point: run, step, train loss, lr, tokens/s, eval loss."""
    writer = csv.writer(sys.stdout)
    writer.writerow(["run", "sweep", "step", "loss", "lr", "tokens_per_s", "eval_loss"])
    for run in reversed(store.runs(limit=1_000_000)):
        steps = {row["step"]: row for row in store.step_rows(run["id"])}
        evals = {step: loss for step, loss, _ in store.evals(run["id"])}
        for step in sorted(set(steps) | set(evals)):
            point = steps.get(step, {})
            writer.writerow([run["id"], run["sweep"] or "", step, point.get("loss", ""),
                             point.get("lr", ""), point.get("tokens_per_s", ""), evals.get(step, "")])
    return 0
