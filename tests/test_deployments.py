"""prefect.yaml as deployed: every deployment's parameters are typed and constrained, so that the
Prefect server refuses a bad value when a run is created (the same JSON Schema check, here without
a server: ``prefect deploy`` makes the schema from the flow's signature, the server validates new
runs' parameters with :func:`prefect.utilities.schema_tools.validate`); what needs per-site
configuration is deployed without an active schedule."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools import ValidationError, validate

from flows import automations
from flows.automations import FLOWS, NIGHTLY
from pipeline.settings import AutomationSettings
from pipeline.summary import RunSummary
from tests.conftest import REPO

DEPLOYMENTS: dict[str, dict[str, Any]] = {
    d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
}


def _flow(entrypoint: str) -> Any:
    """The flow an entrypoint names (``module.path:function``, as a worker imports it)."""
    module, function = entrypoint.split(":")
    return getattr(importlib.import_module(module), function)


def _schema(name: str) -> dict[str, Any]:
    """The parameter schema ``prefect deploy`` stores for the deployment ``name``."""
    flow = _flow(DEPLOYMENTS[name]["entrypoint"])
    schema: dict[str, Any] = parameter_schema(flow.fn).model_dump_for_openapi()
    return schema


def _refused(name: str, parameters: dict[str, object]) -> str:
    """The server's answer to a run of ``name`` with ``parameters`` over the deployment's."""
    merged = {**(DEPLOYMENTS[name].get("parameters") or {}), **parameters}
    with pytest.raises(ValidationError) as caught:
        validate(merged, _schema(name), raise_on_error=True)
    return str(caught.value)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_every_deployment_s_defaults_pass_and_every_parameter_is_typed(name: str) -> None:
    schema = _schema(name)
    validate(DEPLOYMENTS[name].get("parameters") or {}, schema, raise_on_error=True)
    for parameter, spec in schema["properties"].items():
        assert "type" in spec or "anyOf" in spec, f"{name}: {parameter} is untyped"


@pytest.mark.parametrize(
    ("name", "parameters", "named"),
    [
        pytest.param("backfill", {"start": "2024-13-01"}, "start", id="month-13"),
        pytest.param("backfill", {"end": "2024-01-32"}, "end", id="day-32"),
        pytest.param("backfill", {"start": "yesterday"}, "start", id="not-a-date"),
        pytest.param("backfill", {"partitions": 0}, "partitions", id="no-partitions"),
        pytest.param("backfill", {"parallel": 0}, "parallel", id="parallel-0"),
        pytest.param("backfill", {"deployment": "backfill"}, "deployment", id="no-slash"),
        pytest.param("nightly", {"mapping": "no_such_mapping"}, "mapping", id="unknown-mapping"),
        pytest.param("nightly", {"credentials_block": "My Keys"}, "credentials_block", id="block"),
        pytest.param("retry-failed", {"run_id": 0}, "run_id", id="run-0"),
        pytest.param("backfill-partition", {"rate": 0}, "rate", id="rate-0"),
        pytest.param("writeback", {"connectors": "connectors"}, "connectors", id="not-yaml"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(
    name: str, parameters: dict[str, object], named: str
) -> None:
    assert f"field {named!r}" in _refused(name, parameters)


def test_a_mapping_is_a_shipped_name_or_a_yaml_path() -> None:
    schema = _schema("nightly")
    for mapping in ("sample_erp", "flat_csv", "mappings/sample_erp.yaml", "/etc/appzen/ap.yml"):
        validate({"mapping": mapping}, schema, raise_on_error=True)


def test_a_mapping_in_appzen_mappings_dir_is_a_choice_when_deployed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "nightly_ap.yaml").write_text("name: nightly_ap\n")
    monkeypatch.setenv("APPZEN_MAPPINGS_DIR", str(tmp_path))
    validate({"mapping": "nightly_ap"}, _schema("nightly"), raise_on_error=True)


def test_write_back_is_deployed_without_an_active_schedule_and_says_so() -> None:
    writeback = DEPLOYMENTS["writeback"]
    assert [s.get("active") for s in writeback["schedules"]] == [False]
    assert "NOT SCHEDULED UNTIL CONFIGURED" in writeback["description"]
    scheduled = {
        n
        for n, d in DEPLOYMENTS.items()
        if any(s.get("active", True) for s in d.get("schedules") or [])
    }
    assert scheduled == {"nightly", "status-sync"}


def test_retry_failed_is_a_deployment() -> None:
    assert DEPLOYMENTS["retry-failed"]["entrypoint"] == "flows.retry:retry_failed"


def test_the_automations_cover_every_deployed_flow_and_outlast_its_heartbeat() -> None:
    deployed = set()
    for deployment in DEPLOYMENTS.values():
        deployed.add(_flow(deployment["entrypoint"]).name)
        env = deployment["work_pool"]["job_variables"]["env"]
        beat = int(env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])
        assert 2 * beat <= AutomationSettings.model_fields["heartbeat_timeout"].default
    assert set(FLOWS) == deployed
    assert NIGHTLY in deployed


def test_only_a_run_that_completed_with_failed_invoices_is_announced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(automations, "emit_event", lambda event, **kw: sent.append(kw))
    clean = RunSummary(1, "sample_erp", "sync", historical=False, dry_run=False)
    failing = RunSummary(2, "sample_erp", "sync", historical=False, dry_run=False)
    failing.counts["failed_mapping"] = 3
    stopped = RunSummary(3, "sample_erp", "sync", historical=False, dry_run=False)
    stopped.counts["failed_appzen"] = 1
    stopped.stop(RuntimeError("AppZen unreachable"))

    automations.emit_failed_invoices([clean, failing, stopped])

    assert [s["payload"] for s in sent] == [
        {"failed": 3, "run_id": 2, "flow": "sync", "mapping": "sample_erp"}
    ]
    assert sent[0]["resource"]["prefect.resource.id"] == "appzen-etl.run.2"


def test_entrypoints_are_modules_and_both_pull_alternatives_are_defined() -> None:
    """Flows come from the installed appzen-etl (a checkout's .venv or a release), so the same
    deployments serve both pull alternatives; prefect.yaml uses the checkout one."""
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for deployment in DEPLOYMENTS.values():
        assert ".py" not in deployment["entrypoint"]
        assert "/" not in deployment["entrypoint"]
    alternatives = config["definitions"]["pull_steps"]
    assert config["pull"] == alternatives["checkout"]
    release = [next(iter(step)) for step in alternatives["release"]]
    assert release == [
        "prefect.deployments.steps.pip_install_requirements",
        "prefect.deployments.steps.set_working_directory",
    ]
    assert [next(iter(step)) for step in config["build"]][-1] == "flows.release.installed_release"
