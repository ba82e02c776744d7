"""``mapping init`` on each template's fixture recognises the template: the draft, once its
marked values are filled in, maps the fixture to the same payload bytes as the template."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from pipeline.mapping import MappingFileError, load_mapping
from pipeline.scaffold import Draft, from_database, from_files, pending, write
from tests.templates.fixtures import dynamics365, netsuite, oracle_ebs, sap_s4
from tests.templates.support import TEMPLATES, cli, copy_template, map_file, payloads

MARK = re.compile(r'^(?P<indent>\s*)(?P<key>[\w.]+): "TODO\(mapping init\)[^"]*"$')


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each TODO-marked ``key`` set to ``values[key]`` (its comment dropped);
    every mark must be filled, and only marks."""
    out, filled = [], set()
    for line in text.splitlines():
        if line.strip().startswith("# TODO(mapping init)"):
            continue
        found = MARK.match(line)
        if found is None:
            out.append(line)
            continue
        filled.add(found["key"])
        out.append(f"{found['indent']}{found['key']}: {values[found['key']]}")
    assert filled == set(values), f"marked {sorted(filled)}, filled {sorted(values)}"
    return "\n".join(out) + "\n"


def _identical(
    draft: Draft, template: Path, erp_url: str | None, values: Mapping[str, str]
) -> None:
    """Fill the draft's marks with ``values`` and compare its payloads with the template's."""
    write(draft, force=True)
    draft.target.mapping.write_text(fill(draft.mapping, values), encoding="utf-8")
    ours = map_file(draft.target.mapping, erp_url)
    theirs = map_file(template, erp_url)
    assert payloads(ours) == payloads(theirs)
    assert payloads(ours)
    assert [r.key for r in ours] == [r.key for r in theirs]  # rejected ones too


DATABASES: dict[str, tuple[Callable[[str], object], str, str]] = {
    "oracle_ebs": (oracle_ebs.build, "oracle_ebs/oracle_ebs.yaml", "oracle_ebs/extract.sql"),
    "sap_s4": (sap_s4.build, "sap_s4/sap_s4.yaml", "sap_s4/extract.sql"),
    "dynamics365_byod": (
        dynamics365.build_byod,
        "dynamics365/dynamics365_byod.yaml",
        "dynamics365/extract_byod.sql",
    ),
}


@pytest.mark.parametrize("name", sorted(DATABASES))
def test_a_template_database_gives_the_template(name: str, tmp_path: Path) -> None:
    build, mapping, query = DATABASES[name]
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    build(url)
    draft = from_database(url, tmp_path / "mappings")
    assert draft.template is not None
    assert draft.template.name == name
    assert draft.marks == []
    assert draft.query == (TEMPLATES / query).read_text(encoding="utf-8")
    _identical(draft, TEMPLATES / mapping, url, {})


def test_the_dynamics_export_asks_for_the_legal_entity(tmp_path: Path) -> None:
    folder = copy_template("dynamics365", tmp_path / "template")
    dynamics365.write_export(tmp_path / "exports")
    files = [
        tmp_path / "exports" / dynamics365.LINE_FILE,
        tmp_path / "exports" / dynamics365.HEADER_FILE,
    ]
    draft = from_files(files, tmp_path / "mappings")  # lines file first: the order is found
    assert draft.template is not None
    assert draft.template.name == "dynamics365"
    write(draft)
    (message,) = pending(draft)
    assert re.search(
        r"dynamics365\.yaml:\d+ header\.entity_id: not filled in: TODO\(mapping", message
    )
    with pytest.raises(MappingFileError, match="entity_id: not filled in"):
        load_mapping(draft.target.mapping)
    template = folder / "dynamics365.yaml"
    (folder / "export").mkdir()
    for file in files:
        (folder / "export" / file.name).write_bytes(file.read_bytes())
    _identical(draft, template, None, {"entity_id": "{ const: USMF }"})


@pytest.mark.parametrize(
    ("name", "write_export", "file"),
    [
        ("netsuite_saved_search", netsuite.write_saved_search, netsuite.CSV_FILE),
        ("netsuite_suiteql", netsuite.write_suiteql, netsuite.JSONL_FILE),
    ],
)
def test_a_netsuite_export_gives_its_template(
    name: str, write_export: Callable[[Path], object], file: str, tmp_path: Path
) -> None:
    folder = copy_template("netsuite", tmp_path / "template")
    write_export(folder / "export")
    draft = from_files([folder / "export" / file], tmp_path / "mappings")
    assert draft.template is not None
    assert draft.template.name == name
    assert draft.marks == []
    _identical(draft, folder / f"{name}.yaml", None, {})


def test_the_cli_writes_the_draft_and_says_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ebs.db'}"
    oracle_ebs.build(url)
    result = cli("mapping", "init", "--from-db", url, "--out", "drafts", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "wrote drafts/oracle_ebs.yaml, drafts/oracle_ebs.sql" in result.stdout
    assert "from the oracle_ebs template" in result.stdout
    assert "next: appzen-etl mapping check drafts/oracle_ebs.yaml" in result.stdout
    again = cli("mapping", "init", "--from-db", url, "--out", "drafts", cwd=tmp_path)
    assert again.code == 2
    assert "exists; choose another --name or --out, or overwrite with --force" in again.stderr
    check = cli(
        "mapping", "check", "drafts/oracle_ebs.yaml", cwd=tmp_path, env={"ERP_DATABASE_URL": url}
    )
    assert "valid; 12 of 16 invoices mapped" in check.stdout
