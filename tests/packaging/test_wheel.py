"""The built wheel runs outside a checkout: installed with its locked dependencies into a fresh
venv in a temporary directory, ``appzen-etl demo`` and ``appzen-etl sync --mapping sample_erp``
(against ``appzen-etl sandbox`` in the background) work there, reading only installed files."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from pipeline.staging.migrations import head_revision

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".tools" / "bin" / "uv"


def _uv(*args: str) -> None:
    """Run uv in the repository (its cache makes the install fast; no Python downloads)."""
    env = os.environ | {"UV_PYTHON_DOWNLOADS": "never"}
    done = subprocess.run(
        [str(UV), *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bin/`` of a fresh venv outside the checkout holding the wheel and its locked deps."""
    assert UV.is_file(), f"{UV} missing: run `make install` first (make test does)"
    root = tmp_path_factory.mktemp("wheel")
    assert not root.is_relative_to(REPO)
    _uv("build", "--wheel", "--quiet", "-o", str(root / "dist"))
    (wheel,) = (root / "dist").glob("appzen_etl-*.whl")
    _uv("venv", "--quiet", str(root / "venv"), "--python", sys.executable)
    requirements = root / "requirements.txt"
    _uv("export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--quiet",
        "-o", str(requirements))  # fmt: skip
    python = root / "venv" / "bin" / "python"
    _uv("pip", "install", "--quiet", "--python", str(python), "-r", str(requirements), str(wheel))
    return python.parent


def _env(home: Path, bin_dir: Path, **settings: str) -> dict[str, str]:
    """A clean environment: nothing of the checkout, the caller's settings or its Prefect."""
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # A new PREFECT_HOME on a loaded 2-core machine can take more than the default 20 s.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        **settings,
    }


def _run(bin_dir: Path, cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd,
        env=_env(cwd, bin_dir, **settings),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_installed_package_reads_only_its_own_files(venv_bin: Path, tmp_path: Path) -> None:
    probe = (
        "import json, pipeline, flows\n"
        "from pipeline.resources import shipped_root\n"
        "from pipeline.staging.migrations import script_directory\n"
        "print(json.dumps([pipeline.__file__, flows.__file__, str(shipped_root()),\n"
        "                  script_directory().dir]))\n"
    )
    done = _run(venv_bin, tmp_path, "python", "-c", probe)
    assert done.returncode == 0, done.stderr
    site = venv_bin.parent
    for path in json.loads(done.stdout):
        assert Path(path).is_relative_to(site), f"{path} is not inside the installed venv"
    assert "_shipped" in json.loads(done.stdout)[2]


@pytest.mark.slow  # two demos, each a Prefect ephemeral server: out of the fast lane
def test_the_demo_runs_from_the_wheel(venv_bin: Path, tmp_path: Path) -> None:
    done = _run(venv_bin, tmp_path, "appzen-etl", "demo")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    held = re.search(r"the AppZen sandbox holds (\d+) invoices", done.stdout)
    assert held is not None, done.stdout[-3000:]
    assert int(held.group(1)) > 0
    assert _sent(tmp_path / ".state" / "demo" / "staging.db") == int(held.group(1))
    again = _run(venv_bin, tmp_path, "appzen-etl", "demo")  # AppZen remembers: UPDATED
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert _count(again.stdout, "created") == 0, again.stdout[-3000:]
    assert _count(again.stdout, "updated") == _count(again.stdout, "to update") > 0
    printed = [line.strip() for line in again.stdout.splitlines() if line.endswith(" runs")]
    assert len(printed) == 1, again.stdout[-3000:]  # the demo says how to see its runs
    runs = subprocess.run(
        printed[0], shell=True, cwd=tmp_path, env=_env(tmp_path, venv_bin),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert runs.returncode == 0, runs.stderr
    assert runs.stdout.count("sample_erp") >= 4, runs.stdout  # two nightlies and their status


def _count(output: str, label: str) -> int:
    """The count on the summary table's row ``label`` (the first table that has it)."""
    found = re.search(rf"│ {re.escape(label)} +│ +(\d+) │", output)
    assert found is not None, f"no row {label!r} in:\n{output[-3000:]}"
    return int(found.group(1))


def test_a_sync_by_mapping_name_runs_from_the_wheel(venv_bin: Path, tmp_path: Path) -> None:
    erp = "sqlite:///erp.db"
    seed = f"from pipeline.devkit.sample_erp import generate; generate({erp!r}, invoices=60)"
    assert _run(venv_bin, tmp_path, "python", "-c", seed).returncode == 0
    with _sandbox(venv_bin, tmp_path) as base_url:
        done = _run(
            venv_bin, tmp_path, "appzen-etl", "sync", "--mapping", "sample_erp", "--json",
            APPZEN_BASE_URL=base_url, APPZEN_SANDBOX="true", ERP_DATABASE_URL=erp,
            STAGING_DATABASE_URL="sqlite:///staging.db", APPZEN_RATE_LIMIT="500",
        )  # fmt: skip
    assert done.stdout, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert done.returncode == result["exit_code"] == (1 if result["failed"] else 0), done.stderr
    counts = result["runs"][0]["counts"]
    assert counts["created"] == counts["mapped"] > 0, counts
    assert _sent(tmp_path / "staging.db") == counts["created"]


def _sent(staging: Path) -> int:
    """Invoices AppZen acknowledged, as the staging database at ``staging`` records them."""
    with closing(sqlite3.connect(staging)) as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        assert revision == head_revision()
        (count,) = db.execute("SELECT count(*) FROM invoices WHERE state = 'sent'").fetchone()
    return int(count)


@contextmanager
def _sandbox(bin_dir: Path, cwd: Path) -> Iterator[str]:
    """``appzen-etl sandbox`` in the background on a free port; its base URL once it listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(bin_dir / "appzen-etl"), "sandbox", "--port", str(port)],
        cwd=cwd,
        env=_env(cwd, bin_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, server)
        yield f"http://127.0.0.1:{port}/dictionary-data-services"
    finally:
        server.terminate()
        server.communicate(timeout=30)


def _wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert server.poll() is None, f"the sandbox exited: {server.communicate()[1]!r}"
        assert time.monotonic() < deadline, "the sandbox did not listen within 60 s"
        time.sleep(0.05)  # poll interval, not a wait for an outcome
