"""``appzen-etl`` as an operator runs it, in this process (typer's runner: seconds cheaper than a
new Python per command) or as a real subprocess: a project folder with the flat CSV mapping and
its export, an environment pointing at the sandbox and a SQLite staging in the folder."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.staging import StagingStore
from tests.cli.support import APPZEN_ETL, FLAT_COLUMNS, REPO, RUN_LOG

MAPPING = "mappings/flat_csv.yaml"
EXPORT = "samples/flat_ap_export.csv"
SETTING_PREFIXES = ("APPZEN_", "ERP_", "STAGING_", "REPORTS_", "BATCH_")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one command did."""

    code: int
    stdout: str
    stderr: str
    crashed: BaseException | None
    """An exception the command let escape (a traceback for the user), if any."""

    @property
    def messages(self) -> str:
        """stderr without the run log a spawned command writes off a terminal (progress and
        run-end lines): what the command says."""
        return RUN_LOG.sub("", self.stderr)

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass(frozen=True, slots=True)
class Project:
    """An operator's folder: ``mappings/``, ``samples/``, ``sql/``, staging and reports."""

    root: Path
    env: dict[str, str]

    @classmethod
    def create(cls, root: Path, base_url: str, **settings: str) -> Project:
        """The flat CSV mapping on the sandbox at ``base_url``, SQLite staging in ``root``."""
        (root / "mappings").mkdir(parents=True, exist_ok=True)
        (root / "samples").mkdir(exist_ok=True)
        shutil.copy(REPO / MAPPING, root / MAPPING)
        env = {
            "APPZEN_BASE_URL": base_url,
            "APPZEN_SANDBOX": "true",  # base_url is a SandboxServer on a free port
            "STAGING_DATABASE_URL": f"sqlite:///{root / 'staging.db'}",
            "REPORTS_DIR": str(root / "reports"),
            "APPZEN_RATE_LIMIT": "1000",
            "APPZEN_READ_TIMEOUT": "10",
            "APPZEN_RETRY_ATTEMPTS": "2",
        }
        return cls(root, env | settings)

    @property
    def staging_url(self) -> str:
        """The staging database's URL."""
        return self.env["STAGING_DATABASE_URL"]

    def write(self, relative: str, content: bytes | str) -> Path:
        """Write a file of the project (text as UTF-8)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def write_rows(self, rows: Sequence[Mapping[str, str]]) -> Path:
        """The flat export (``;``-separated UTF-8) with ``rows``."""
        path = self.root / EXPORT
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, FLAT_COLUMNS, delimiter=";")
            writer.writeheader()
            writer.writerows(rows)
        return path

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str | None]:
        """The command's environment: no inherited pipeline setting, the project's, ``extra``."""
        inherited = {k: None for k in os.environ if k.startswith(SETTING_PREFIXES)}
        return {**inherited, "COLUMNS": "200", **self.env, **(extra or {})}

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> Outcome:
        """``appzen-etl *args`` in this process, from the project folder."""
        here = Path.cwd()
        os.chdir(self.root)
        try:
            result = CliRunner().invoke(app, list(args), env=self.environment(env))
        finally:
            os.chdir(here)
        crashed = result.exception if not isinstance(result.exception, SystemExit) else None
        return Outcome(result.exit_code, result.stdout, result.stderr, crashed)

    def spawn(self, *args: str, prelude: str = "", env: Mapping[str, str] | None = None) -> Outcome:
        """``appzen-etl *args`` as a new process: the installed console script, or with a
        ``prelude`` (Python run first, e.g. resource limits) the same entry point via ``-c``."""
        command = [str(APPZEN_ETL), *args]
        if prelude:
            code = f"{prelude}\nimport sys\nfrom pipeline.cli import app\n"
            command = [sys.executable, "-c", code + "sys.argv[0] = 'appzen-etl'\napp()", *args]
        variables = {k: v for k, v in self.environment(env).items() if v is not None}
        done = subprocess.run(
            command,
            cwd=self.root,
            env={k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
            | variables
            | {"PYTHONPATH": str(REPO)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr, None)

    def report_rows(self) -> list[dict[str, str]]:
        """Every failed row of every CSV report the commands wrote."""
        rows: list[dict[str, str]] = []
        for path in sorted((self.root / "reports").glob("run-*-failures.csv")):
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows += [r for r in csv.DictReader(handle) if r["message"] != "no failed rows"]
        return rows

    def store(self) -> StagingStore:
        """The project's staging store (close it after use)."""
        return StagingStore.open(self.staging_url)
