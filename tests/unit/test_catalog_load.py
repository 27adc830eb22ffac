"""`catalog load` refuses a bad file whole, naming file, line and field, never with a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from viss_bridge.cli import main
from viss_bridge.demo.world import DEMO_CATALOG_DIR

GOOD = {"reg_number": "40003000001", "name": 'SIA "Paraugs"', "legal_form": "SIA", "registered": "2001-02-03"}


def _load(tmp_path: Path, name: str, text: str):  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog"
    catalog.mkdir(exist_ok=True)
    shutil.copy(Path(DEMO_CATALOG_DIR) / "ur_company.yaml", catalog)
    rows = tmp_path / name
    rows.write_text(text, encoding="utf-8")
    env = {"VISS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.sqlite'}", "VISS_BRIDGE_CATALOG_DIR": str(catalog)}
    return CliRunner(env=env).invoke(main, ["catalog", "load", "ur_company", str(rows)]), rows


def test_a_row_without_its_key_names_file_and_line(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD), json.dumps({k: v for k, v in GOOD.items() if k != "reg_number"})]
    result, rows = _load(tmp_path, "rows.jsonl", "\n".join(lines) + "\n")
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)  # a ClickException, no traceback
    assert f"{rows}:2: key field 'reg_number' is missing" in result.output
    assert "Traceback" not in result.output


def test_max_length_is_enforced_on_load(tmp_path: Path) -> None:
    too_long = {**GOOD, "reg_number": "400030000019"}  # 12 characters; the manifest allows 11
    result, rows = _load(tmp_path, "rows.csv", ",".join(GOOD) + "\n" + ",".join(too_long.values()) + "\n")
    assert isinstance(result.exception, SystemExit) and result.exit_code != 0
    assert f"{rows}:2:" in result.output and "reg_number" in result.output and "max_length 11" in result.output
    ok, _ = _load(tmp_path, "good.jsonl", json.dumps(GOOD) + "\n")
    assert ok.exit_code == 0, ok.output
