"""The sandbox's own ceiling: ``wrk`` (Debian's HTTP load generator) POSTing invoices over
keep-alive connections, each request a new ``invoice_id`` (creates, as a backfill sends)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import SANDBOX_CREDENTIALS

HERE = Path(__file__).resolve().parent
_LUA = """
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["historical"] = "true"
wrk.headers["x-api-key"] = "{api_key}"
wrk.headers["customer-id"] = "{customer_id}"
wrk.headers["customer-key"] = "{customer_key}"
local file = io.open("{body_path}", "rb")
local body = file:read("*a")
file:close()
local at = string.find(body, "{marker}", 1, true)
local head = string.sub(body, 1, at - 1)
local tail = string.sub(body, at + string.len("{marker}"))
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. counter .. tail)
end
"""


@dataclass(frozen=True, slots=True)
class Ceiling:
    """What wrk achieved: requests/s, and how many answers were not 2xx."""

    rate: float
    requests: int
    errors: int


def ensure_wrk() -> str:
    """The path of ``wrk``, installed with apt-get first if missing (``ensure-wrk.sh``)."""
    subprocess.run(["bash", str(HERE / "ensure-wrk.sh")], check=True)
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is still not on PATH after ensure-wrk.sh")
    return found


def ceiling(base_url: str, body: bytes, invoice_id: str, *, seconds: int = 8) -> Ceiling:
    """Requests per second wrk gets through ``POST {base_url}/invoice`` with ``body`` (in which
    ``invoice_id`` is replaced by a new id per request), one thread, 32 connections."""
    wrk = ensure_wrk()
    marker = f'"invoice_id":"{invoice_id}"'
    if marker.encode() not in body:
        raise ValueError(f"the body has no {marker}")
    with tempfile.TemporaryDirectory() as folder:
        body_path = Path(folder) / "body.json"
        body_path.write_bytes(body.replace(marker.encode(), b'"invoice_id":"WRK-@@"'))
        api_key, customer_id, customer_key = SANDBOX_CREDENTIALS
        script = Path(folder) / "post.lua"
        script.write_text(
            _LUA.format(
                api_key=api_key,
                customer_id=customer_id,
                customer_key=customer_key,
                body_path=body_path,
                marker="@@",
            ),
            encoding="utf-8",
        )
        result = subprocess.run(
            [wrk, "-t1", "-c32", f"-d{seconds}s", "-s", str(script), f"{base_url}/invoice"],
            check=True,
            capture_output=True,
            text=True,
        )
    return _parse(result.stdout)


def _parse(output: str) -> Ceiling:
    rate = re.search(r"Requests/sec:\s*([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    if rate is None or total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return Ceiling(float(rate.group(1)), int(total.group(1)), int(errors.group(1)) if errors else 0)
