"""The HTML report in a real headless Chromium: it renders, and nothing hostile runs in it.

Needs Debian's chromium (``scripts/ensure-chromium.sh`` installs it). A missing browser fails the
test with that instruction; it is never skipped.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
from pathlib import Path

import pytest

from pipeline.report import write_reports
from pipeline.report.htmlreport import CSP
from pipeline.report.worklist import esc, script
from pipeline.staging.records import StoredFailure
from tests.report.devtools import FLAGS
from tests.report.helpers import (
    ATTR_PAYLOAD,
    ELEMENT_PAYLOAD,
    IMG_PAYLOAD,
    SVG_PAYLOAD,
    TITLE_PAYLOAD,
    Page,
    failure,
    make_run,
    one_per_stage,
    stored,
)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
BROWSER_TIMEOUT_S = 20
HOSTILE = (TITLE_PAYLOAD, ELEMENT_PAYLOAD, IMG_PAYLOAD, ATTR_PAYLOAD, SVG_PAYLOAD)


def _browse(chromium: str, page: Path, profile: Path, *action: str) -> str:
    """Run headless chromium on ``page`` with ``action`` flags; its stdout."""
    command = [chromium, *FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()]
    # Its own process group, so a hung browser goes down with its renderer and GPU children.
    browser = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = browser.communicate(timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.communicate()
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT_S} s on {page}")
    assert browser.returncode == 0, f"chromium failed ({browser.returncode}): {stderr[-2000:]}"
    return stdout


def _dom(chromium: str, page: Path, tmp_path: Path) -> Page:
    """The page's DOM after loading (and after any script that could run, ran)."""
    return Page(_browse(chromium, page, tmp_path / "profile", "--dump-dom"))


def _hostile_failures() -> list[StoredFailure]:
    return [
        *one_per_stage(),
        *(
            stored(
                failure(
                    "appzen",
                    "appzen_400",
                    f"AppZen says: {payload}",
                    source_key=payload,
                    source_location=payload,
                    field_path=payload,
                    value=payload,
                    hint=payload,
                    correlation_id=payload,
                )
            )
            for payload in HOSTILE
        ),
        stored(failure(value="invoice\u202efdp.exe\x00", message="Müller — 東京 ✓ " + "W" * 5000)),
    ]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_hostile_report_renders_and_runs_no_script(chromium: str, tmp_path: Path) -> None:
    paths = write_reports(make_run(), _hostile_failures(), tmp_path / "reports")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-hostile.png"
    shot.unlink(missing_ok=True)
    _browse(
        chromium,
        paths.html,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1400,2000",
    )
    assert shot.exists(), f"chromium wrote no screenshot at {shot}"
    assert shot.stat().st_size > 20_000, "the screenshot is suspiciously small (a blank page?)"
    assert _png_size(shot) == (1400, 2000)

    dom = _dom(chromium, paths.html, tmp_path)
    assert (
        dom.title == "Run 42 (nightly-sync, acme_ap): 10 invoices failed (12 rows)"
    )  # not 'PWNED'
    assert not {"img", "svg", "iframe", "object", "embed"} & dom.names()
    assert [tag for tag, _ in dom.tags].count("script") == 1  # the page's own, hashed
    assert script() in dom.text
    assert all(attrs.get("id") != "injected" for _, attrs in dom.tags)
    assert not {name for name in dom.attributes() if name.startswith("on")}
    assert "data-pwned" not in dom.attributes()
    for payload in HOSTILE:
        assert payload in dom.text, f"{payload!r} is not shown as text"
    assert "invoice<U+202E>fdp.exe\u2400" in dom.text
    assert "Müller — 東京 ✓" in dom.text


def _spliced(tmp_path: Path, name: str, with_csp: bool) -> Path:
    """The real report page with a raw, unescaped payload spliced in (as if escaping broke)."""
    page = write_reports(make_run(), one_per_stage(), tmp_path / name).html
    text = page.read_text(encoding="utf-8")
    raw = f"{TITLE_PAYLOAD}{ELEMENT_PAYLOAD}{SVG_PAYLOAD}"
    text = text.replace("</body>", f"{raw}</body>")
    if not with_csp:
        meta = f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        assert meta in text
        text = text.replace(meta, "")
    page.write_text(text, encoding="utf-8")
    return page


def test_the_csp_stops_even_an_unescaped_injection(chromium: str, tmp_path: Path) -> None:
    protected = _dom(chromium, _spliced(tmp_path, "csp", with_csp=True), tmp_path)
    assert "script" in protected.names()  # the injection is in the page ...
    assert (
        protected.title == "Run 42 (nightly-sync, acme_ap): 5 invoices failed (6 rows)"
    )  # ... and ran not
    assert all(attrs.get("id") != "injected" for _, attrs in protected.tags)
    assert "data-pwned" not in protected.attributes()

    # Control: without the CSP the same page does run it, so the checks above can see a script.
    exposed = _dom(chromium, _spliced(tmp_path, "no-csp", with_csp=False), tmp_path)
    assert exposed.title == "PWNED"
    assert any(attrs.get("id") == "injected" for _, attrs in exposed.tags)
