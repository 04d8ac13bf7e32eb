"""Plain-text tables and number formats shared by the benchmark scripts."""

from __future__ import annotations


def say(text: str) -> None:
    print(text, flush=True)


def table(headers: list[str], rows: list[list], title: str = "") -> None:
    """Print ``rows`` under ``headers`` in aligned columns."""
    text = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    if title:
        print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in text:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)), flush=True)


def secs(t: float | None) -> str:
    return "—" if t is None else f"{t:.3f}" if t < 10 else f"{t:.1f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.1f}×" if a / b >= 1 else f"{a / b:.2f}×"
