"""docs/legacy.md: its mapping examples are the shipped files and load in the mapping model."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from viss_bridge.catalog.contract_mapping import ContractMapping, OperationMapping

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "legacy.md").read_text(encoding="utf-8")


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", GUIDE, flags=re.S)


def test_the_guide_shows_the_shipped_csdd_mapping_verbatim() -> None:
    shipped = (ROOT / "viss_bridge" / "demo" / "contracts" / "csdd.yaml").read_text(encoding="utf-8")
    assert shipped in _yaml_blocks()


def test_every_whole_mapping_in_the_guide_loads_in_the_model() -> None:
    whole = [yaml.safe_load(b) for b in _yaml_blocks() if b.lstrip().startswith(("wsdl:", "# catalog/legacy", "# The"))]
    mappings = [data for data in whole if isinstance(data, dict) and "operations" in data]
    assert len(mappings) >= 2
    for data in mappings:
        ContractMapping.model_validate(data)


def test_the_changes_example_loads_as_an_operation() -> None:
    block = next(b for b in _yaml_blocks() if "kind: changes" in b and "GetPersonChanges:" in b)
    operation = yaml.safe_load(block.replace("{...}", "{PersonCode: person_code}"))["GetPersonChanges"]
    assert OperationMapping.model_validate(operation).kind == "changes"
