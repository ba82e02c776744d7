"""The flows' parameter types: typed and constrained, so that a Prefect server refuses a bad value
when the run is created (``prefect deployment run … --param partitions=0`` answers 422 at once)
instead of a worker failing on it seconds later.

Prefect turns a flow's signature into the deployment's parameter schema (JSON Schema) at
``prefect deploy`` and the server checks every new run's parameters against it (formats
included: ``start=2024-13-01`` is not a date). What JSON Schema cannot say (``start`` after
``end``) the job still checks on the worker.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core.core_schema import CoreSchema

from pipeline.jobs.mappings import mapping_names

MAPPING_FILE = r"^[^\s].*\.ya?ml$"
"""A mapping given as a file path: anything ending in ``.yaml`` or ``.yml``."""


class _MappingChoices:
    """JSON Schema of a mapping parameter, made when ``prefect deploy`` reads the flow: a name
    must be one that exists there (APPZEN_MAPPINGS_DIR and the shipped mappings); a path
    (``….yaml``) is checked by the worker that runs it."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        for key in ("type", "minLength"):
            schema.pop(key, None)
        return {
            **schema,
            "anyOf": [
                {"type": "string", "enum": mapping_names(), "title": "a mapping name"},
                {"type": "string", "pattern": MAPPING_FILE, "title": "a mapping file (.yaml)"},
            ],
        }


MappingRef = Annotated[
    str,
    Field(
        min_length=1,
        description="A mapping name (sample_erp: found in APPZEN_MAPPINGS_DIR or among the "
        "shipped mappings) or a mapping file's path (.yaml).",
    ),
    _MappingChoices(),
]
DAY = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
"""YYYY-MM-DD with a real month and day number (the server does not check JSON Schema formats)."""
Day = Annotated[
    date | None,
    Field(description="A day, YYYY-MM-DD (whole days; null: open end)."),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date", "pattern": DAY}, {"type": "null"}]}
    ),
]
ConnectorsFile = Annotated[
    str,
    Field(
        pattern=MAPPING_FILE,
        description="The write-back's connectors file (.yaml), e.g. mappings/connectors.yaml.",
    ),
]
OutcomesFile = Annotated[
    str | None,
    Field(min_length=1, description="An exported AppZen outcomes CSV to import first."),
]
Partitions = Annotated[
    int, Field(ge=1, le=1000, description="Date ranges the backfill is cut into (1 to 1000).")
]
PartitionTimeout = Annotated[
    float,
    Field(
        gt=0,
        description="Seconds a spread backfill waits for its partition runs (default 24 h); a "
        "partition not finished by then is reported lost and the backfill ends Failed (a "
        "rerun finishes it).",
    ),
]
ResumeNextDay = Annotated[
    bool,
    Field(
        description="When the daily AppZen budget runs out, schedule this run again (same "
        "parameters) at the start of the next AppZen day; off: the run ends Failed and waits "
        "for a rerun.",
    ),
]
Parallel = Annotated[
    int | None,
    Field(ge=1, description="Partitions the pool runs at once (default: all of them)."),
]
PartitionIndex = Annotated[int, Field(ge=1, description="The partition's number, from 1.")]
Rate = Annotated[
    float | None,
    Field(gt=0, le=10_000, description="Requests/s (default: APPZEN_RATE_LIMIT)."),
]
RunId = Annotated[
    int | None, Field(ge=1, description="A staging run id (appzen-etl status lists them).")
]
BlockName = Annotated[
    str | None,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="A Prefect Secret block holding the AppZen credentials (lowercase letters, "
        "digits and dashes).",
    ),
]
LimitName = Annotated[
    str | None,
    Field(
        min_length=1,
        pattern=r"^\S+$",
        description="The Prefect global concurrency limit all workers share (the AppZen quota);"
        " null: none (one worker only).",
    ),
]
DeploymentName = Annotated[
    str,
    Field(
        pattern=r"^[^/\s]+/[^/\s]+$",
        description="FLOW/DEPLOYMENT that runs each partition.",
    ),
]
