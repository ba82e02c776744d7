"""Source columns → AppZen fields, by name (the synonyms of :mod:`.targets`), type and content.

Every column gets a score per target: how well its name fits, times how well its values fit
(dates for a date, numbers for an amount, ISO codes for a currency). A currency column is also
found by its codes alone. Required fields are assigned first, best score first; a column feeds
one field, except the pairs :data:`~.targets.SHARED` allows (the supplier id is often its number).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.scaffold.profile import Profile
from pipeline.scaffold.targets import SHARED, Target, Want, name_score

THRESHOLD = 0.6
"""Below this score a column is not proposed for a field."""
Rows = Literal["header", "lines", "both"]


@dataclass(frozen=True)
class Candidate:
    """A source column as ``mapping init`` sees it: its name, which rows carry it (a header or a
    line table; ``both`` for a flat export), its content, and whether it is the header's key."""

    name: str
    rows: Rows
    profile: Profile
    primary_key: bool = False


@dataclass(frozen=True)
class Match:
    """A column proposed for a target, with its score and why (``name``, ``content``, ``key``)."""

    target: Target
    column: Candidate
    score: float
    how: str


def fit(want: Want, profile: Profile) -> float:
    """How well values of ``profile`` suit a target wanting ``want`` (0: not at all)."""
    if profile.kind == "empty":
        return 0.8  # no evidence either way: the name decides
    table: dict[Want, dict[str, float]] = {
        "text": {"date": 0.0, "datetime": 0.0},
        "date": {"date": 1.0, "datetime": 0.9},
        "timestamp": {"datetime": 1.0, "date": 0.7},
        "amount": {"number": 1.0, "integer": 1.0},
        "currency": {"currency": 1.0},
        "integer": {"integer": 1.0, "number": 0.8},
    }
    if want == "text":
        return table["text"].get(profile.kind, 1.0)
    return table[want].get(profile.kind, 0.0)


def score(target: Target, column: Candidate) -> Match | None:
    """The match of ``column`` for ``target``, or None when it does not qualify."""
    if not _reachable(target, column):
        return None
    if target.level == "key" and column.primary_key:
        return Match(target, column, 1.0, "key")
    named = name_score(column.name, target.synonyms)
    if "." in column.name:  # a nested JSON key (invoiceItems.quantity): its own name counts too
        named = max(named, name_score(column.name.rsplit(".", 1)[-1], target.synonyms))
    value = named * fit(target.want, column.profile)
    how = "name"
    if target.want == "currency" and column.profile.kind == "currency" and value < 0.65:
        value, how = 0.65, "content"
    return Match(target, column, value, how) if value >= THRESHOLD else None


def _reachable(target: Target, column: Candidate) -> bool:
    if column.rows == "both":
        return True
    return (target.level == "lines") == (column.rows == "lines")


def assign(targets: Sequence[Target], columns: Iterable[Candidate]) -> dict[str, Match]:
    """The best column for each target it can have: ``{target.dotted: match}``."""
    pool = list(columns)
    matches = [m for t in targets for c in pool if (m := score(t, c)) is not None]
    matches.sort(key=lambda m: (not m.target.required, -m.score))
    chosen: dict[str, Match] = {}
    users: dict[str, set[str]] = {}
    for match in matches:
        target = match.target.dotted
        if target in chosen or not _free(users.get(match.column.name, set()), target):
            continue
        chosen[target] = match
        users.setdefault(match.column.name, set()).add(target)
    return chosen


def _free(used_by: set[str], target: str) -> bool:
    return all(any({user, target} <= pair for pair in SHARED) for user in used_by)
