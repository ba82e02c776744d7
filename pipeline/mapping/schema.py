"""The JSON Schema of mapping files, generated from :class:`MappingSpec` and committed as
``mappings/mapping.schema.json`` (editors validate and complete mapping files with it).

Regenerate with ``python -m pipeline.mapping.schema``; ``--check`` exits 1 when the committed file
is stale (a test does the same). Nothing reads the file at run time: the loader validates with the
models themselves. It is a shipped file (:mod:`pipeline.resources`): in a checkout, the
repository's ``mappings/``.
"""

from __future__ import annotations

import json
import sys

from pipeline.mapping.spec import MappingSpec
from pipeline.resources import shipped_root

SCHEMA_PATH = shipped_root() / "mappings" / "mapping.schema.json"


def schema_text() -> str:
    """The JSON Schema as the committed file holds it."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/appzen-etl/appzen-etl/mappings/mapping.schema.json",
        **MappingSpec.model_json_schema(),
    }
    schema["title"] = "appzen-etl mapping file"
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema file (or, with ``--check``, say whether it is up to date)."""
    args = sys.argv[1:] if argv is None else argv
    text = schema_text()
    if "--check" in args:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            sys.stderr.write(f"{SCHEMA_PATH} is stale: run python -m pipeline.mapping.schema\n")
            return 1
        return 0
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
