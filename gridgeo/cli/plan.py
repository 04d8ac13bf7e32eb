"""``gridgeo plan log|show|diff|export`` and ``gridgeo rebalance``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from gridgeo.cli.options import (
    Output,
    check_inputs,
    check_outputs,
    prepared_output,
    read_config,
    read_input,
)
from gridgeo.cli.output import Ui
from gridgeo.errors import DataFileError, GridgeoError

__all__ = ["run_plan_diff", "run_plan_export", "run_plan_log", "run_plan_show", "run_rebalance"]


# -- plan: read-only views of a plan store ------------------------------------------------------
def _store(args: argparse.Namespace):
    from gridgeo.plan import PlanStore

    target = args.store
    if "://" not in target:
        check_inputs({"plan store": target})
    return PlanStore(target, create=False)


def run_plan_log(args: argparse.Namespace, ui: Ui) -> int:
    with _store(args) as store:
        log = store.log()
    if ui.format == "json":
        ui.emit_json(log.to_dict(orient="records"))
    elif ui.format == "csv":
        ui.emit_csv(log, index=False)
    else:
        ui.show(log.set_index("version"), f"plan store {args.store}: {len(log)} version(s)")
    return 0


def _plan_summary(plan) -> pd.DataFrame:
    grids = plan.grids
    rows = {
        "grids": len(grids),
        "micro-grids": len(plan.micro_table),
        "units": len(plan.units),
        "households": int(grids["households"].sum()),
        "residents": int(grids["residents"].sum()),
        "steps": len(plan.steps),
        "norm warnings": len(plan.norm_warnings()),
    }
    if "workers" in grids:
        rows["workers"] = int(grids["workers"].sum())
    return pd.DataFrame({"value": rows})


def run_plan_show(args: argparse.Namespace, ui: Ui) -> int:
    with _store(args) as store:
        version = args.version or store.head
        plan = store.load(version)
    summary = _plan_summary(plan)
    history = plan.history
    if ui.format == "json":
        ui.emit_json(
            {
                "version": version,
                "summary": summary["value"].to_dict(),
                "history": history.to_dict(orient="records"),
                "warnings": plan.norm_warnings(),
            }
        )
    elif ui.format == "csv":
        ui.emit_csv(summary)
    else:
        ui.show(summary, f"version {version}")
        if len(history):
            ui.show(
                history.set_index("step")[["op", "by", "households_moved", "touched"]], "history"
            )
        for text in plan.norm_warnings()[: args.limit]:
            ui.note(f"注意 note: {text}")
    return 0


def run_plan_diff(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo.plan import compare

    with _store(args) as store:
        a, b = store.load(args.old), store.load(args.new)
    comparison = compare(a, b)
    changed = comparison.grids[comparison.grids["relation"] != "unchanged"]
    columns = [
        "code",
        "relation",
        "households_before",
        "households_after",
        "from_codes",
        "to_codes",
    ]
    if ui.format == "json":
        ui.emit_json(
            {"summary": comparison.summary, "grids": changed[columns].to_dict(orient="records")}
        )
    elif ui.format == "csv":
        ui.emit_csv(changed[columns], index=False)
    else:
        summary = pd.DataFrame({"count": comparison.summary})
        ui.show(summary[summary["count"] > 0], f"{args.old} → {args.new}")
        _show_grids(ui, changed[columns], args.limit, "changed grids")
    return 0


def run_plan_export(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo.plan import export_plan

    out = Path(args.out)
    inputs = [] if "://" in args.store else check_inputs({"plan store": args.store})
    check_outputs([Output("-o/--out", out, (".gpkg",))], inputs)
    with _store(args) as store:
        version = args.version or store.head
        plan = store.load(version)
    export_plan(plan, prepared_output(out))
    ui.note(f"wrote version {version} to {out} (units, grids, micro-grids, crosswalk)")
    return 0


# -- rebalance ----------------------------------------------------------------------------------
def _window_option(value: str) -> tuple[int, int]:
    """``--households 300:500`` as (300, 500)."""
    from gridgeo.errors import option

    lo, _, hi = value.partition(":")
    try:
        return int(lo), int(hi)
    except ValueError:
        raise GridgeoError(
            f"{option('households', value)}: give the window as MIN:MAX households, e.g. "
            f"{option('households', '300:500')}."
        ) from None


def _rebalance_input(args: argparse.Namespace):
    """The plan to rebalance: ``STORE@VERSION`` (a plan store) or a grid system with units."""
    from gridgeo.plan import UNIT_LAYER, Plan, PlanStore

    data = args.data
    if "@" in data or "://" in data:
        target, _, version = data.rpartition("@")
        if not target or "/" in version or ":" in version:
            # postgresql://user@host/db without a version: the last "@" was the user's
            target, version = data, ""
        inputs = [] if "://" in target else check_inputs({"plan store": target})
        with PlanStore(target, create=False) as store:
            return store.load(version or None), inputs
    import pyogrio

    from gridgeo.io import read_layer
    from gridgeo.io.formats import folder_layers

    inputs = check_inputs({"DATA": data})
    config = read_config(args)
    system = read_input(data, config)
    path = Path(data)
    if path.is_dir():
        files = folder_layers(path)
        units = read_layer(files[UNIT_LAYER]) if UNIT_LAYER in files else None
    else:
        names = pyogrio.list_layers(path)[:, 0].tolist()
        units = read_layer(path, UNIT_LAYER) if UNIT_LAYER in names else None
    if units is None:
        raise DataFileError(
            f"DATA {path} has no {UNIT_LAYER!r} layer, the building blocks a rebalancing "
            "moves; add one (gridgeo.plan.derive_units), or give a plan store as STORE@VERSION."
        )
    return Plan.from_system(system, units), inputs


def _compactness_option(value: str) -> float | None:
    raw = value.strip().lower()
    if raw == "none":
        return None
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0 <= share < 1:
        raise GridgeoError(
            f"--max-compactness-loss {value!r}: give a share from 0 to below 1, such as 0.1 "
            "(the median Polsby-Popper of the grids touched may fall 10 %), or none."
        )
    return share


def run_rebalance(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo.plan import export_plan
    from gridgeo.plan.rebalance import rebalance

    window = _window_option(args.households) if args.households else None
    out = Path(args.out) if args.out else None
    plan, inputs = _rebalance_input(args)
    if out is not None:
        check_outputs([Output("-o/--out", out, (".gpkg",))], inputs)
    locked = [c.strip() for c in (args.lock or "").split(",") if c.strip()]
    districts = set(plan.grid_table["parent_code"].astype(str))
    for town in args.town or []:
        if town not in districts:
            raise GridgeoError(
                f"--town {town!r}: no district of that code has grids in {args.data} (it has "
                f"{len(districts)}, e.g. {', '.join(sorted(districts)[:3])})."
            )
    with ui.status("rebalancing …"):
        new, report = rebalance(
            plan,
            towns=args.town,
            households=window,
            per_worker=args.per_worker,
            locked=locked,
            max_moved=args.max_moved,
            keep_villages=not args.split_villages,
            seed=args.seed,
            resize=args.resize,
            max_compactness_loss=_compactness_option(args.max_compactness_loss),
        )
    if out is not None:
        export_plan(new, prepared_output(out))
    columns = ["code", "norm", "households_before", "households_after", "status"]
    changed = report.grids[report.grids["status"] != "inside"]
    if ui.format == "json":
        ui.emit_json(
            {
                "ok": report.ok,
                "summary": report.summary,
                "grids": changed[[*columns, "reason"]].to_dict(orient="records"),
                "proposals": report.proposals.to_dict(orient="records"),
                "problems": report.problems.to_dict(orient="records"),
            }
        )
    elif ui.format == "csv":
        ui.emit_csv(report.grids, index=False)
    else:
        ui.note(str(report))
        if len(changed):
            _show_grids(ui, changed[columns], args.limit,
                        "grids outside their window before or after")  # fmt: skip
    if out is not None:
        ui.note(f"wrote the rebalanced plan to {out} (units, grids, micro-grids, crosswalk)")
    return 0 if report.ok else 1


def _show_grids(ui: Ui, grids: pd.DataFrame, limit: int, title: str) -> None:
    """The first ``limit`` grids as a table (households before / after abbreviated), and
    how many more there are."""
    shown = grids.head(limit).set_index("code")
    ui.show(shown.rename(columns={"households_before": "hh before", "households_after": "hh after"}),
            title)  # fmt: skip
    if len(grids) > limit:
        ui.note(f"… {len(grids) - limit} more; --limit N shows more, --format csv all.")
