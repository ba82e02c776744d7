"""The Markdown summary for the Prefect artifact: counts by stage and rule, links to the files."""

from __future__ import annotations

import secrets
from pathlib import Path

from pipeline import redact
from pipeline.report import summary_markdown, write_reports
from tests.report.helpers import failure, make_run, one_per_stage, stored


def test_counts_by_stage_and_rule_and_links(tmp_path: Path) -> None:
    failures_ = [*one_per_stage(), stored(failure("mapping", "date_format", "bad"))]
    run = make_run()
    paths = write_reports(run, failures_, tmp_path / "reports")
    text = summary_markdown(run, failures_, paths)
    assert text.startswith("## Run 42: 7 failed rows\n")
    assert "status **failed**" in text
    assert "| mapping | Mapping\\: a source value did not convert | 2 |" in text
    assert "| appzen | AppZen rejected the invoice | 1 |" in text
    assert "| mapping | date\\_format | 2 |" in text
    assert "| retries\\_exhausted | retries\\_exhausted\\:QuotaExceeded | 1 |" in text
    html_uri = (tmp_path / "reports" / "run-42-failures.html").resolve().as_uri()
    csv_uri = (tmp_path / "reports" / "run-42-failures.csv").resolve().as_uri()
    assert f"[run\\-42\\-failures\\.html]({html_uri})" in text
    assert f"[run\\-42\\-failures\\.csv]({csv_uri})" in text
    stage_rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(stage_rows) == 2 + 6 + 6  # two header rows, six stages, six (stage, rule) pairs


def test_markdown_in_the_data_cannot_format_or_split_a_table(tmp_path: Path) -> None:
    rule = "x|y *bold* [link](http://evil) <b>"
    failures_ = [stored(failure("mapping", rule, "m"))]
    run = make_run(mapping="m|_*")
    text = summary_markdown(run, failures_, write_reports(run, failures_, tmp_path))
    assert "| mapping | x\\|y \\*bold\\* \\[link\\]\\(http\\:\\/\\/evil\\) \\<b\\> | 1 |" in text
    assert "mapping m\\|\\_\\*" in text


def test_links_survive_parentheses_in_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "reports (nightly)"
    run = make_run()
    text = summary_markdown(run, [], write_reports(run, [], out))
    assert "reports%20%28nightly%29/run-42-failures.html)" in text


def test_an_empty_run(tmp_path: Path) -> None:
    run = make_run(status="succeeded", historical=True)
    text = summary_markdown(run, [], write_reports(run, [], tmp_path))
    assert text.startswith("## Run 42: no failed rows\n")
    assert ", historical." in text
    assert "| stage |" not in text


def test_a_registered_secret_never_appears(tmp_path: Path) -> None:
    secret = f"tok-{secrets.token_hex(10)}"
    redact.register(secret)
    run = make_run(flow=f"sync {secret}")
    failures_ = [stored(failure("mapping", f"rule-{secret}", "m"))]
    text = summary_markdown(run, failures_, write_reports(run, failures_, tmp_path))
    assert secret not in text.replace("\\", "")
