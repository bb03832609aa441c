"""Figures measured by the benchmarks, their targets, the summary table and results.json."""

from __future__ import annotations

import argparse
import json
import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    op: str
    value: float

    def met(self, measured: float) -> bool:
        return _COMPARE[self.op](measured, self.value)

    def __str__(self) -> str:
        return f"{self.op} {_number(self.value)}"


def at_least(value: float) -> Target:
    return Target(">=", value)


def below(value: float) -> Target:
    return Target("<", value)


@dataclass(frozen=True)
class Figure:
    benchmark: str
    name: str
    value: float | None
    unit: str
    command: str
    target: Target | None = None
    note: str = ""

    @property
    def status(self) -> str:
        if self.value is None:
            return "SKIP"
        if self.target is None:
            return "info"
        return "PASS" if self.target.met(self.value) else "MISS"

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["target"] = str(self.target) if self.target else None
        data["status"] = self.status
        return data


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def show(figure: Figure) -> str:
    value = "-" if figure.value is None else _number(figure.value)
    return f"{value} {figure.unit}".strip()


def print_figure(figure: Figure) -> None:
    target = f"  (target {figure.target} {figure.unit})" if figure.target else ""
    note = f"  [{figure.note}]" if figure.note else ""
    print(f"  {figure.status:4}  {figure.name}: {show(figure)}{target}{note}", flush=True)


def print_table(figures: Iterable[Figure]) -> None:
    rows = [
        (
            f.benchmark,
            f.name,
            show(f),
            f"{f.target} {f.unit}" if f.target else "",
            f.status,
        )
        for f in figures
    ]
    header = ("benchmark", "figure", "measured", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for row in [header, None, *rows]:
        if row is None:
            print(line)
            continue
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(line, flush=True)


def print_commands(figures: Iterable[Figure]) -> None:
    seen: dict[str, str] = {}
    for f in figures:
        seen.setdefault(f.benchmark, f.command)
    print("\nTo reproduce the figures of a benchmark:")
    for benchmark, command in seen.items():
        print(f"  {benchmark:9} {command}")


def save(figures: list[Figure], ran: list[str], path: Path = OUT / "results.json") -> None:
    """Write the figures, keeping earlier results of benchmarks not run this time."""
    kept: list[dict[str, object]] = []
    if path.exists():
        try:
            previous = json.loads(path.read_text())
            kept = [f for f in previous.get("figures", []) if f.get("benchmark") not in ran]
        except (ValueError, AttributeError):
            kept = []
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": kept + [f.as_json() for f in figures],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def run_alone(doc: str | None, run: Callable[[bool], object]) -> None:
    """A benchmark module run on its own (`python -m benchmarks.<name> [--quick]`)."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args().quick)
