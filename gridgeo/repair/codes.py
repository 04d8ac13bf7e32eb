"""Code repairs: a new code for a duplicate, a parent for an orphan.

Both keep the geometry and change only ``code`` / ``parent_code``: the
polygon itself, and its descendants whose codes extend the old code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

__all__ = ["Recode", "next_code", "recodes"]


@dataclass
class Recode:
    """``position`` of ``level`` becomes ``code`` under ``parent``; ``descendants``
    lists ``(level, position, new code, new parent code)`` that follow."""

    kind: str  # duplicate_code | orphan
    rule: str
    level: str
    position: int
    old_code: str
    code: str
    old_parent: str
    parent: str
    reason: str
    descendants: list[tuple[str, int, str, str]] = field(default_factory=list)


def next_code(prefix: str, digits: int, taken: set[str]) -> str | None:
    """One above the highest code under ``prefix`` (holes are never reused: a hole
    may be a retired code); ``None`` when the digits are used up.

    >>> next_code("150823100", 3, {"150823100001", "150823100007"})
    '150823100008'
    """
    used = [
        int(c[len(prefix) :])
        for c in taken
        if c.startswith(prefix) and len(c) == len(prefix) + digits and c[len(prefix) :].isdigit()
    ]
    seq = max(used, default=0) + 1
    return None if seq >= 10**digits else prefix + str(seq).zfill(digits)


def recodes(
    level,
    codes: np.ndarray,
    parents: np.ndarray,
    geoms: np.ndarray,
    mother_codes: np.ndarray | None,
    mothers: np.ndarray | None,
    prefix_length: int,
    below: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
) -> list[Recode]:
    """Duplicate and orphan codes of one level, and what to make of each.

    ``below`` holds, for each lower level, ``(name, codes, parent codes,
    representative points)`` so a renamed polygon takes its descendants along.
    A duplicate's first polygon (in row order) keeps the code; each other one
    gets the next free code under its parent. An orphan goes to the parent
    polygon it overlaps most, with the next free code there.
    """
    out: list[Recode] = []
    taken = set(codes.tolist())
    series = pd.Series(codes)
    dup = series[series.duplicated(keep="first")]
    for i, code in dup.items():
        stem = str(parents[i])[:prefix_length] if mother_codes is not None else ""
        new = next_code(stem, level.code_digits, taken) if stem else None
        if new is None:
            continue
        taken.add(new)
        out.append(Recode("duplicate_code", "next_free_code", level.name, int(i), str(code), new,
                          str(parents[i]), str(parents[i]),
                          f"code {code} is also used by an earlier row; next free code "
                          f"under {parents[i]}"))  # fmt: skip
    if mother_codes is not None and mothers is not None:
        orphan = ~np.isin(parents, mother_codes)
        for i in np.flatnonzero(orphan):
            hit = shapely.STRtree(mothers).query(geoms[i], predicate="intersects")
            if not len(hit):
                continue
            share = shapely.area(shapely.intersection(mothers[hit], geoms[i]))
            home = int(hit[np.argmax(share)])
            parent = str(mother_codes[home])
            new = next_code(parent[:prefix_length], level.code_digits, taken)
            if new is None:
                continue
            taken.add(new)
            out.append(Recode("orphan", "containing_parent", level.name, int(i), str(codes[i]),
                              new, str(parents[i]), parent,
                              f"parent {parents[i]} does not exist; {parent} holds "
                              f"{share.max() / max(shapely.area(geoms[i]), 1e-9):.0%} of it"))  # fmt: skip
    for r in out:
        r.descendants = _descendants(r, geoms, below)
    return out


def _descendants(r: Recode, geoms, below) -> list[tuple[str, int, str, str]]:
    """Lower-level polygons whose codes extend ``r.old_code`` and lie in ``r``'s polygon."""
    out = []
    old, new = {r.old_code}, {r.old_code: r.code}
    polygon = geoms[r.position]
    shapely.prepare(polygon)
    first = True
    for name, codes, parents, points in below:
        pick = np.isin(parents, list(old))
        if first:  # a duplicate's children: only those inside this polygon
            pick &= shapely.contains(polygon, points)
            first = False
        old, nxt = set(), {}
        for j in np.flatnonzero(pick):
            parent = new[str(parents[j])]
            code = parent + str(codes[j])[len(str(parents[j])) :]
            out.append((name, int(j), code, parent))
            old.add(str(codes[j]))
            nxt[str(codes[j])] = code
        new = nxt
        if not old:
            break
    return out
