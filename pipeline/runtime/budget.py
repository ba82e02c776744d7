"""The daily AppZen request budget as a run sees it: requests taken from a shared ledger in blocks.

AppZen allows each customer a number of requests per day (``APPZEN_DAILY_BUDGET``). Every
request to AppZen — a post, a retry, a status push, a get-details read — is one unit. The count
lives in a :class:`BudgetLedger` every run, worker and flow shares (the staging database:
:mod:`pipeline.staging.budget`); a run takes units from it in small blocks (:data:`BLOCK`), so
the ledger is written once per block, not once per request, and gives back what it did not use
when it ends (:meth:`DailyBudget.close`), so the day's count is exact.

:class:`BudgetedLimiter` puts the budget in front of a rate limiter: every ``acquire()`` — the
one gate each attempt of a call passes — first takes one unit. When the
ledger grants nothing, :class:`~pipeline.errors.BudgetSpent` is raised there: the dispatcher lets
the requests already out finish and starts no other (their invoices stay pending).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pipeline.errors import BudgetSpent
from pipeline.runtime.ratelimit import RateLimiter

BLOCK = 20
"""Requests a run takes from the ledger at a time (one ledger write per block)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What the ledger granted: ``granted`` requests (0: spent) on AppZen day ``day``; when 0,
    ``message`` is the one line that says why and when the budget resumes (``resumes_at``)."""

    granted: int
    day: str
    message: str = ""
    resumes_at: str = ""


class BudgetLedger(Protocol):
    """The shared count of the day's requests (the staging database)."""

    def take(self, flow: str, wanted: int) -> Grant:
        """Grant up to ``wanted`` requests of today's budget to ``flow``."""
        ...

    def give_back(self, flow: str, day: str, unused: int) -> None:
        """Return ``unused`` requests granted to ``flow`` on ``day``."""
        ...


class DailyBudget:
    """One run's share of the day's budget: units taken from ``ledger`` for ``flow`` in blocks.

    Not thread-safe; a run's calls all take from one event loop."""

    def __init__(self, ledger: BudgetLedger, flow: str, *, block: int = BLOCK) -> None:
        if block < 1:
            raise ValueError(f"DailyBudget: block={block} must be ≥ 1")
        self.ledger = ledger
        self.flow = flow
        self.block = block
        self.used = 0
        """Requests this run took (each one went out, or was about to)."""
        self._left = 0
        self._day = ""
        self._spent: BudgetSpent | None = None

    @property
    def spent(self) -> bool:
        """True once the ledger refused this run a request (the day's budget is spent)."""
        return self._spent is not None

    def take(self) -> None:
        """Take one request of the budget, or raise :class:`BudgetSpent`."""
        if self._left == 0:
            self._refill()
        self._left -= 1
        self.used += 1

    def _refill(self) -> None:
        if self._spent is not None:
            raise self._spent
        grant = self.ledger.take(self.flow, self.block)
        if grant.granted <= 0:
            self._spent = BudgetSpent(grant.message, resumes_at=grant.resumes_at)
            raise self._spent
        self._left, self._day = grant.granted, grant.day

    def close(self) -> None:
        """Give back what this run took and did not use."""
        if self._left > 0:
            left, self._left = self._left, 0
            self.ledger.give_back(self.flow, self._day, left)


class BudgetedLimiter:
    """A :class:`RateLimiter` that takes one unit of a :class:`DailyBudget` per request."""

    def __init__(self, limiter: RateLimiter, budget: DailyBudget) -> None:
        self.limiter = limiter
        self.budget = budget

    @property
    def current_rate(self) -> float:
        """The wrapped limiter's rate."""
        return self.limiter.current_rate

    async def acquire(self) -> None:
        """One unit of the budget (or :class:`BudgetSpent`), then the rate limiter's slot."""
        self.budget.take()
        await self.limiter.acquire()

    def on_success(self) -> None:
        """Passed to the wrapped limiter."""
        self.limiter.on_success()

    def on_throttled(self, retry_after: float | None) -> None:
        """Passed to the wrapped limiter."""
        self.limiter.on_throttled(retry_after)
