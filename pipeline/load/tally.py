"""What a sync run counts in ``RunSummary.counts``, and how the counts add up.

For every run::

    extracted = mapped + failed_mapping + failed_validation
    mapped    = planned_create + planned_update + unchanged + rejected_unchanged + busy

and, unless it is a dry run (which sends nothing: the planned counts are the plan)::

    planned_create + planned_update + recreate_resent
              = created + updated + failed_appzen + failed_retries + left_pending
    requests  = created + updated + failed_appzen + failed_retries + retries   (no fatal stop)

``left_pending`` are invoices claimed but not sent because a fatal answer stopped the run.
Creates AppZen answered UPDATED (part of ``updated``: an earlier send went through, its answer
never recorded) are counted by cause: ``resent_after_crash`` (the run that had claimed it died),
``resent_after_lost_answer`` (this run's earlier attempt, or a run that ended with the send in
doubt), ``resent_after_other_worker`` (no run of this staging had sent it). An update of an
invoice a dead run had claimed is counted ``reupdated_after_crash``: AppZen answers UPDATED either
way, so this is an upper bound of the repeats (the dead run may never have sent it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pipeline.mapping.engine import MappedInvoice, RejectedInvoice, UnchangedSource
from pipeline.staging.records import Decision, SendOutcome


def count_extracted(counts: Counter[str], batch: Sequence[MappedInvoice | RejectedInvoice]) -> None:
    """Invoices read from the source: mapped, or failed in mapping or validation."""
    for result in batch:
        counts["extracted"] += 1
        if isinstance(result, MappedInvoice):
            counts["mapped"] += 1
        else:
            stage = result.failures[0].stage
            counts[f"failed_{stage if stage in ('validation', 'check') else 'mapping'}"] += 1


def count_skipped(counts: Counter[str], skipped: Sequence[UnchangedSource]) -> None:
    """Invoices whose source rows are those of their acknowledged payload: read, not mapped
    again, and unchanged (counted as ``extracted``, ``mapped`` and ``unchanged``, so the sums
    above hold; ``unchanged_source`` says how many of them skipped mapping)."""
    if skipped:
        for key in ("extracted", "mapped", "unchanged", "unchanged_source"):
            counts[key] += len(skipped)


def count_decisions(counts: Counter[str], decisions: Sequence[Decision]) -> None:
    """What staging decided for each mapped invoice (``planned_create`` for a send that expects
    a create, ``unchanged``, ``busy``…)."""
    for decision in decisions:
        key = decision.action if decision.action != "send" else f"planned_{decision.expect}"
        counts[key] += 1


def count_posted(
    counts: Counter[str], sent: int, outcomes: Sequence[SendOutcome], retries: int
) -> None:
    """How the ``sent`` invoices ended: AppZen's answers, requests made, those left pending."""
    counts["retries"] += retries
    if sent > len(outcomes):
        counts["left_pending"] += sent - len(outcomes)
    for outcome in outcomes:
        counts["requests"] += outcome.attempts
        if outcome.kind == "acked":
            counts[(outcome.appzen_status or "acked").lower()] += 1
            if outcome.expect == "create" and outcome.appzen_status == "UPDATED":
                counts[f"resent_after_{outcome.cause or 'other_worker'}"] += 1
            elif outcome.expect == "update" and outcome.cause == "crash":
                counts["reupdated_after_crash"] += 1
        else:
            counts["failed_appzen" if outcome.kind == "rejected" else "failed_retries"] += 1
