"""The process the crash test kills: one nightly round (sync, then status-sync) of the sample ERP
against the sandbox, made exactly as the test's own reruns make it (:class:`Runs`).

It runs in a child of a ``forkserver`` that has imported this module (pandas, SQLAlchemy, httpx
and the pipeline with it), so starting a worker costs a fork, not a Python start-up, and a dozen
kill cycles stay within seconds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path

from pipeline.cli import app
from pipeline.jobs.store import open_store
from tests.reliability.world import Runs, scenario_settings


def nightly(base_url: str, erp_url: str, staging_url: str, reports_dir: str) -> None:
    """One sync and one status-sync; the process is meant to be killed before they end."""
    settings = scenario_settings(base_url, erp_url, staging_url)
    store = open_store(settings)
    try:
        Runs(settings, store, Path(reports_dir)).nightly()
    finally:
        store.close()


def command(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> None:
    """``appzen-etl *argv`` (the CLI's own entry point) with ``env`` as its settings."""
    os.environ.update(env)
    os.chdir(cwd)
    with contextlib.suppress(SystemExit):
        app(list(argv), prog_name="appzen-etl")


def start(base_url: str, erp_url: str, staging_url: str, reports_dir: Path) -> BaseProcess:
    """A worker running :func:`nightly`, started from the preloaded forkserver."""
    return _spawn(nightly, (base_url, erp_url, staging_url, str(reports_dir)))


def start_command(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> BaseProcess:
    """A process running ``appzen-etl *argv`` (:func:`command`), from the preloaded forkserver."""
    return _spawn(command, (list(argv), dict(env), str(cwd)))


def _spawn(target: Callable[..., None], args: tuple[object, ...]) -> BaseProcess:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    worker = context.Process(target=target, args=args, daemon=True)
    worker.start()
    return worker
