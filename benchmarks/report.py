"""The one results table: figures beside their same-run baselines, as text, markdown and JSON."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Figure:
    """One row of the table: what was measured, against which baseline, and the target."""

    row: str
    what: str
    measured: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    """``None`` when the row has no target (informative only)."""
    detail: dict[str, object] = field(default_factory=dict)
    """Raw numbers behind the cells (seconds, counts, rates) for the JSON file."""


@dataclass(frozen=True, slots=True)
class Machine:
    """Where the table was measured."""

    cpus: int
    cpu_model: str
    ram_gb: float
    python: str

    def describe(self) -> str:
        """``2 CPUs (AMD EPYC), 23.4 GB RAM, Python 3.11.2``."""
        return (
            f"{self.cpus} CPUs ({self.cpu_model}), {self.ram_gb:.1f} GB RAM, Python {self.python}"
        )


def this_machine() -> Machine:
    """``nproc``, the CPU model and the RAM of this machine (Linux /proc)."""
    import os  # noqa: PLC0415

    model = "unknown CPU"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            kib = int(line.split()[1])
    return Machine(
        len(os.sched_getaffinity(0)), model, kib / 1024 / 1024, platform.python_version()
    )


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


_HEADERS = ("#", "What", "Measured", "Baseline (same run)", "Ratio", "Target", "Met")


def _cells(figure: Figure) -> tuple[str, ...]:
    ratio = "" if figure.ratio is None else f"{figure.ratio:,.2f}"
    met = "—" if figure.met is None else ("yes" if figure.met else "NO")
    return (
        figure.row,
        figure.what,
        figure.measured,
        figure.baseline,
        ratio,
        figure.target,
        met,
    )


def render_text(figures: list[Figure]) -> str:
    """The table for a terminal (fixed-width columns)."""
    rows = [_HEADERS, *(_cells(f) for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


def render_markdown(figures: list[Figure], machine: Machine, seconds: float) -> str:
    """The table as a GitHub markdown table, with the machine and the run's duration."""
    escape = str.maketrans({"|": "\\|"})
    lines = [
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join("---" for _ in _HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(c.translate(escape) for c in _cells(f)) + " |" for f in figures]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines += ["", f"Measured {stamp} on {machine.describe()}; the whole run took {seconds:.0f} s."]
    return "\n".join(lines) + "\n"


def write_results(
    folder: Path, figures: list[Figure], machine: Machine, seconds: float
) -> tuple[Path, Path]:
    """Write ``latest.json`` and ``latest.md`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": asdict(machine),
        "seconds": round(seconds, 1),
        "figures": [asdict(figure) for figure in figures],
    }
    json_path, md_path = folder / "latest.json", folder / "latest.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(figures, machine, seconds), encoding="utf-8")
    return json_path, md_path
