"""Workers without a checkout: prefect.yaml's ``release`` pull steps on a real Prefect server.

The release folder comes from ``scripts/release.sh`` (the wheel and a requirements.txt pinned
from uv.lock); a venv is made from it outside the checkout; ``prefect deploy`` runs from an
operator's folder holding only prefect.yaml (``pull: *release``), with that venv's Prefect; then
appzen-etl is uninstalled from the venv (its dependencies stay) and a worker, started from it in
its own home folder (``APPZEN_HOME``: settings, ``.state/``, a site mapping in
``APPZEN_MAPPINGS_DIR``), runs the nightly: the pull step installs the deployed release, and the
flow runs against the sandbox.
No process sees the checkout: not on ``PATH``, not the working directory, not ``PYTHONPATH``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.settings import PREFECT_API_URL, temporary_settings

from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sandbox import SandboxServer
from tests.flows.prefect_processes import QUIET, prefect_database, prefect_server, start, stop

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.prefect,
    pytest.mark.postgres,
    pytest.mark.timeout(900),
]

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".tools" / "bin" / "uv"
POOL = "appzen-etl"


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=400, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _release(root: Path) -> Path:
    """``scripts/release.sh`` into ``root``: the folder of the current version."""
    env = os.environ | {"UV": str(UV), "UV_PYTHON_DOWNLOADS": "never"}
    return Path(_run([str(REPO / "scripts" / "release.sh"), str(root)], REPO, env).strip())


def _worker_venv(release: Path, root: Path) -> Path:
    """A venv with pip (the pull step runs ``pip install -r``) holding the release; its bin/."""
    env = os.environ | {"UV_PYTHON_DOWNLOADS": "never"}
    _run([str(UV), "venv", "--seed", "--quiet", str(root), "--python", sys.executable], REPO, env)
    python = root / "bin" / "python"
    _run([str(UV), "pip", "install", "--quiet", "--python", str(python), "-r", "requirements.txt"],
         release, env)  # fmt: skip
    return python.parent


def _clean_env(bin_dir: Path, home: Path, api_url: str, **settings: str) -> dict[str, str]:
    """Nothing of the checkout or of this process's settings: PATH, HOME, Prefect, ``settings``."""
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home / ".prefect"),
        **QUIET,
        **settings,
    }


def _site_home(home: Path) -> None:
    """A worker's home: a site mapping (a copy of the sample ERP's, under another name) and the
    queries it names, found through ``APPZEN_MAPPINGS_DIR``."""
    (home / "mappings").mkdir(parents=True)
    mapping = (REPO / "mappings" / "sample_erp.yaml").read_text()
    (home / "mappings" / "site_erp.yaml").write_text(
        mapping.replace("name: sample_erp", "name: site_erp")
    )
    shutil.copytree(REPO / "sql" / "sample_erp", home / "sql" / "sample_erp")


async def _run_nightly(api_url: str) -> tuple[UUID, str]:
    """A nightly run with the site mapping; its final state's name (polled with a deadline)."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("nightly-sync/nightly")
            run = await client.create_flow_run_from_deployment(
                deployment.id, parameters={"mapping": "site_erp"}
            )
            for _ in range(300):
                state = (await client.read_flow_run(run.id)).state
                if state is not None and state.is_final():
                    return run.id, f"{state.name}: {state.message}"
                await asyncio.sleep(1)  # poll interval
    raise TimeoutError("the nightly did not finish within 300 s")


async def test_a_worker_without_a_checkout_installs_the_release_and_runs_the_nightly(
    sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("release-worker")
    assert not root.is_relative_to(REPO)
    release = _release(root / "releases")
    bin_dir = _worker_venv(release, root / "venv")
    ops, home = root / "ops", root / "worker-home"
    ops.mkdir()
    config = (REPO / "prefect.yaml").read_text()
    assert "\npull: *checkout" in config
    (ops / "prefect.yaml").write_text(config.replace("\npull: *checkout", "\npull: *release"))
    _site_home(home)
    generate(f"sqlite:///{home / 'erp.db'}", invoices=40, seed=3)

    with (
        prefect_database() as database,
        prefect_server(root, database, root) as api_url,
    ):
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            async with get_client() as client:
                await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        deploy_env = _clean_env(
            bin_dir, ops, api_url, APPZEN_MAPPINGS_DIR=str(home / "mappings")
        )  # the mapping names the deployment offers
        _run([str(bin_dir / "prefect"), "--no-prompt", "deploy", "--name", "nightly"], ops,
             deploy_env)  # fmt: skip
        # The worker's venv has the dependencies but not appzen-etl: the pull step installs it.
        _run([str(UV), "pip", "uninstall", "--quiet", "--python", str(bin_dir / "python"),
              "appzen-etl"], root)  # fmt: skip
        assert _installed(bin_dir) == "none"
        worker_env = _clean_env(
            bin_dir, home, api_url,
            APPZEN_RELEASES=str(release.parent),
            APPZEN_HOME=str(home),
            APPZEN_MAPPINGS_DIR=str(home / "mappings"),
            APPZEN_BASE_URL=sandbox.base_url,
            APPZEN_SANDBOX="true",
            APPZEN_RATE_LIMIT="200",
            ERP_DATABASE_URL="sqlite:///erp.db",  # relative: the flow run works in APPZEN_HOME
            PREFECT_WORKER_QUERY_SECONDS="1",
        )  # fmt: skip
        args = [str(bin_dir / "prefect"), "worker", "start", "--pool", POOL, "--name", "far"]
        worker = start("worker", args, worker_env, root, home)
        try:
            _, final = await _run_nightly(api_url)
        finally:
            stop(worker)
    log = worker.log.read_text(errors="replace")
    assert final.startswith("Completed"), final + "\n" + worker.tail(80)
    assert "Executing deployment step: pip_install_requirements" in log
    assert str(REPO) not in log
    assert sandbox.state.invoices(), "the nightly sent the site ERP's invoices"
    assert (home / ".state" / "staging.db").is_file()  # the default staging, in APPZEN_HOME
    assert _installed(bin_dir) == release.name  # the deployed release, installed by the run


def _installed(bin_dir: Path) -> str:
    """The appzen-etl version installed in the venv of ``bin_dir`` (``none``)."""
    probe = (
        "import importlib.metadata as m\n"
        "try: print(m.version('appzen-etl'))\n"
        "except m.PackageNotFoundError: print('none')"
    )
    return _run([str(bin_dir / "python"), "-c", probe], bin_dir).strip()
