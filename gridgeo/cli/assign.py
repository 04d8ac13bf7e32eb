"""``gridgeo assign``: points to grids, a chunk at a time."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gridgeo.cli.options import (
    Output,
    check_inputs,
    check_outputs,
    parse_crs,
    read_config,
    read_input,
)
from gridgeo.cli.output import Ui, progress_bar
from gridgeo.errors import EncodingError

__all__ = ["CHUNK_ROWS", "Tally", "print_assignment", "run_assign"]

CHUNK_ROWS = 200_000
"""Rows of a CSV points table assigned and written at a time by ``gridgeo assign``."""


# -- assign -------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Assignment statuses and reasons, summed over chunks."""

    status: pd.Series
    reasons: pd.Series

    @classmethod
    def of(cls, result) -> Tally:
        status = result["assign_status"].value_counts(sort=False)
        status = status.reindex(result["assign_status"].cat.categories, fill_value=0)
        placed = result["assign_status"] != "inside"
        reasons = result.loc[placed, "assign_reason"].value_counts()
        return cls(status.astype(np.int64), reasons[reasons > 0].astype(np.int64))

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.status.add(other.status, fill_value=0).astype(np.int64),
            self.reasons.add(other.reasons, fill_value=0).astype(np.int64),
        )

    @property
    def rows(self) -> int:
        return int(self.status.sum())

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {"rows": self.status, "share %": 100 * self.status / max(self.rows, 1)}
        )
        frame.index.name = "status"
        return frame


def print_assignment(tally: Tally, ui: Ui) -> None:
    ui.show(tally.frame(), "分配结果 assignment")
    if len(tally.reasons):
        reasons = tally.reasons.sort_values(ascending=False).to_frame("rows")
        reasons.index.name = "reason"
        ui.show(reasons, "原因 reasons (not inside)")


def _point_chunks(args: argparse.Namespace) -> Iterator:
    """The points table, ``--chunk-size`` rows at a time (a CSV is read as it goes)."""
    from gridgeo.io.tables import iter_points

    return iter_points(
        args.points,
        chunksize=args.chunk_size,
        lon=args.lon,
        lat=args.lat,
        crs=args.crs,
        encoding=args.encoding,
    )


def run_assign(args: argparse.Namespace, ui: Ui) -> int:
    from gridgeo.assign import assign, build_index, check_placed
    from gridgeo.io import open_writer
    from gridgeo.io.stream import STREAM_SUFFIXES

    inputs = check_inputs({"points table": args.points, "--grids": args.grids})
    out = Path(args.out)
    check_outputs([Output("-o/--out", out, STREAM_SUFFIXES)], inputs)
    config = read_config(args)
    parse_crs(args.crs)
    chunks = _point_chunks(args)  # checks the table (encoding, columns) before the long work
    try:
        system = read_input(
            args.grids, config, encoding=args.grids_encoding, coords=args.grids_coords
        )
    except EncodingError as exc:
        raise EncodingError(
            f"{exc} (for the grid system given by --grids, the option is --grids-encoding)"
        ) from None
    index = build_index(system)
    tally = None
    with progress_bar(ui) as advance, open_writer(out, config=system.config) as writer:
        for chunk in chunks:
            # A chunk may lie wholly outside the root polygon (a sorted file): the whole
            # table is checked once, below, before anything is moved into place.
            result = assign(
                chunk,
                system,
                coords=args.coords,
                on_overlap=args.on_overlap,
                gap_tolerance=args.gap_tolerance,
                index=index,
                require_placed=False,
            )
            writer.write(result)
            tally = Tally.of(result) if tally is None else tally + Tally.of(result)
            advance(len(result))
        if tally is not None:
            check_placed(tally.status, system, args.crs)
    if ui.format == "json":
        ui.emit_json(
            {
                "out": str(out),
                "rows": tally.rows,
                "by_status": tally.status.to_dict(),
                "by_reason": tally.reasons.to_dict(),
            }
        )
    elif ui.format == "csv":
        ui.emit_csv(tally.frame())
    else:
        print_assignment(tally, ui)
    ui.note(f"wrote {tally.rows:,} rows to {out}")
    return 0
