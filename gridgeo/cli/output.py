"""Printing for the ``gridgeo`` command: consoles, tables that fit 80 columns, JSON and CSV."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

__all__ = [
    "FORMATS",
    "Ui",
    "defect_table",
    "print_borders",
    "print_defects",
    "print_kinds",
    "progress_bar",
]

FORMATS = ("table", "json", "csv")


# -- output: consoles, tables, machine-readable formats -------------------------------------
@dataclass
class Ui:
    """Where things are printed: tables and results on stdout, the rest on stderr
    whenever stdout carries JSON or CSV."""

    out: Console
    err: Console
    format: str = "table"

    @property
    def tables(self) -> bool:
        return self.format == "table"

    def note(self, text: str) -> None:
        (self.out if self.tables else self.err).print(text)

    def status(self, text: str):
        return self.err.status(text)

    def show(self, frame: pd.DataFrame, title: str) -> None:
        if self.tables:
            self.out.print(_fit(frame, title, self.out))

    def emit_json(self, payload) -> None:
        text = json.dumps(
            _plain(payload), ensure_ascii=False, indent=2, allow_nan=False, default=_jsonable
        )
        sys.stdout.write(text)
        sys.stdout.write("\n")

    def emit_csv(self, frame: pd.DataFrame, index: bool = True) -> None:
        frame.to_csv(sys.stdout, index=index, lineterminator="\n")


def _plain(value):
    """``value`` with NaN and pandas' missing values as ``None`` (JSON ``null``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def _jsonable(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)


def _compact(title: str) -> Table:
    """An empty table in the one compact style of the CLI: a rule under the header only."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )


def _table(frame: pd.DataFrame, title: str, right: bool = False) -> Table:
    """``frame`` as a compact table whose cells never wrap (numbers and codes stay whole)."""
    table = _compact(title)
    table.add_column(frame.index.name or "", no_wrap=True)
    for column in frame.columns:
        numbers = right or frame[column].map(_is_number).all()
        table.add_column(str(column), justify="right" if numbers else "left", no_wrap=True)
    for index, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        table.add_row(str(index), *(_cell(v) for v in row))
    return table


def _vertical(frame: pd.DataFrame, title: str) -> Table:
    """One block per row (``column  value`` lines), for rows too wide for the terminal."""
    table = Table.grid(padding=(0, 2))
    table.title = title
    table.title_justify = "left"
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for index, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        table.add_row(f"[bold]{frame.index.name or ''} {index}[/]".strip(), "")
        for column, value in zip(frame.columns, row, strict=True):
            table.add_row(f"  {column}", _cell(value))
    return table


def _natural_width(table: Table, console: Console) -> int:
    return Measurement.get(console, console.options.update(max_width=10_000), table).maximum


def _fit(frame: pd.DataFrame, title: str, console: Console) -> Table:
    """The widest layout that fits ``console``: the table, its transpose, or blocks."""
    table = _table(frame, title)
    if _natural_width(table, console) <= console.width:
        return table
    if len(frame) <= 6:
        transposed = frame.T
        transposed.index.name = frame.index.name or ""
        turned = _table(transposed.astype(object), title, right=True)
        if _natural_width(turned, console) <= console.width:
            return turned
    return _vertical(frame, title)


def _is_number(value) -> bool:
    return value is None or value is pd.NA or isinstance(value, int | float | np.number)


def _cell(value) -> str:
    if value is None or value is pd.NA:
        return "—"
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "—"
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


# -- check --------------------------------------------------------------------------------------
_DEFECT_COLUMNS = {
    "severity": "severity",
    "kind": "kind",
    "level": "level",
    "codes": "codes",
    "area_m2": "area m²",
    "width_m": "width m",
    "message_zh": "message",
}
_SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def print_defects(defects, limit: int, ui: Ui) -> None:
    if defects.empty:
        ui.out.print("[bold green]无缺陷 no defects found[/]")
        return
    title = f"缺陷 defects ({len(defects)})"
    shown = defects.head(limit)
    table = _compact(title)
    for label in _DEFECT_COLUMNS.values():
        numeric = label in ("area m²", "width m")
        table.add_column(label, justify="right" if numeric else "left", no_wrap=label != "message")
    for row in shown.itertuples():
        table.add_row(
            f"[{_SEVERITY_COLOURS.get(row.severity, 'white')}]{row.severity}[/]",
            row.kind,
            row.level,
            ", ".join(str(row.codes).split(",")),
            f"{row.area_m2:,.1f}",
            f"{row.width_m:,.2f}",
            row.message_zh,
        )
    if _natural_width(table, ui.out) > ui.out.width:
        table = _defect_blocks(shown, title)
    ui.out.print(table)
    if len(defects) > limit:
        ui.out.print(f"… {len(defects) - limit} more (see --out, or --format csv)")


def _defect_blocks(defects, title: str) -> Table:
    """Defects for narrow terminals: one short block each, codes and numbers unbroken."""
    table = Table.grid(padding=(0, 1))
    table.title = title
    table.title_justify = "left"
    table.add_column(no_wrap=True, justify="right")
    table.add_column(overflow="fold")
    for number, row in enumerate(defects.itertuples(), start=1):
        colour = _SEVERITY_COLOURS.get(row.severity, "white")
        table.add_row(f"{number}", f"[{colour}]{row.severity}[/] [bold]{row.kind}[/] {row.level}")
        table.add_row("", ", ".join(str(row.codes).split(",")))
        table.add_row("", f"area {row.area_m2:,.1f} m², width {row.width_m:,.2f} m")
        table.add_row("", str(row.message_zh))
    return table


def _kinds_by_district(summary: pd.DataFrame) -> pd.DataFrame:
    """Per kind: the total and the districts involved (``code ×n``), as one wrapping text cell."""
    towns = summary.drop(columns="total", errors="ignore")
    text = [
        ", ".join(f"{town} ×{int(n)}" if n > 1 else str(town) for town, n in row.items() if n > 0)
        for _, row in towns.iterrows()
    ]
    total = summary["total"] if "total" in summary else towns.sum(axis=1)
    out = pd.DataFrame({"total": total.to_numpy(), "districts": text}, index=summary.index)
    out.index.name = "kind"
    return out


def print_kinds(summary: pd.DataFrame, ui: Ui, where: tuple[str, str]) -> None:
    """Defects per kind and district; ``where`` names the district level (zh, en)."""
    frame = _kinds_by_district(summary)
    table = _compact(f"每类缺陷按{where[0]}统计 defects per kind and {where[1]}")
    table.add_column("kind", no_wrap=True)
    table.add_column("total", justify="right", no_wrap=True)
    table.add_column(f"{where[1]}s")  # wraps between codes, never inside one
    for kind, row in frame.iterrows():
        table.add_row(str(kind), f"{int(row['total']):,}", row["districts"])
    ui.out.print(table)


def print_borders(borders, limit: int, ui: Ui) -> None:
    """Borders along which the check found several pieces: one problem each."""
    several = borders[borders["pieces"] > 1]
    if several.empty:
        return
    frame = pd.DataFrame(
        {
            "kinds": several["kinds"].to_numpy(),
            "pieces": several["pieces"].to_numpy(),
            "m²": several["area_m2"].to_numpy(),
            "length m": several["length_m"].to_numpy(),
        },
        index=pd.Index(several["codes"].to_numpy(), name="border"),
    ).head(limit)
    title = f"沿同一边界的缺陷 pieces along one border ({len(several)} borders)"
    ui.out.print(_fit(frame, title, ui.out))


def defect_table(defects) -> pd.DataFrame:
    return pd.DataFrame(defects.drop(columns=defects.geometry.name))


@contextmanager
def progress_bar(ui: Ui) -> Iterator[Callable[[int], None]]:
    """Rows assigned so far, on stderr (the total is not known while streaming)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("assigning: {task.completed:,} points"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=ui.err, transient=True) as progress:
        task = progress.add_task("assign", total=None)
        yield lambda rows: progress.advance(task, rows)
