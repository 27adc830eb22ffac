"""docs/migration.md: the walk-through's commands run as written, in order, and end with the service switched over."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "migration.md"


PERSONS = "## Walk-through: the persons register"
VEHICLES = "## Walk-through: the vehicle register"


def walkthrough_commands(section: str = PERSONS) -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(section)
    end = text.index("\n## ", start + len(section))
    return re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.S)


def _run(tmp_path: Path, blocks: list[str], ports: dict[str, int], data: Path) -> subprocess.CompletedProcess[str]:
    script = "\n".join(blocks)
    for written, port in ports.items():
        script = script.replace(written, str(port))
    shutil.copytree(ROOT / "wsdl", tmp_path / "wsdl")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISS_BRIDGE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=240)
    finally:
        for pid_file in ("bridge.pid", "provider.pid"):
            try:
                os.kill(int((data / pid_file).read_text().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    blocks = walkthrough_commands()
    assert len(blocks) >= 10
    data = tmp_path / "var" / "migration-demo"
    result = _run(tmp_path, blocks, {"8480": free_port(), "8491": free_port()}, data)
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    out = result.stdout
    assert "FizPersonasService" in out and "AdresesService" in out
    assert "PMLP/FizPersonas/v1-0: 20 request(s), 20 equal, 0 different, 0 error(s): parity 100.0%" in out
    assert re.search(r"GetPersonResponse/Person/GivenName: legacy '[^']+', bridge '[^']+'", out)
    mistake = json.loads((data / "shadow-mistake.json").read_text())
    assert mistake["differing_fields"] == {"GetPersonResponse/Person/GivenName": 3,
                                           "GetPersonResponse/Person/Surname": 3}
    assert "PMLP/FizPersonas/v1-0: switched over" in out and "PMLP/FizPersonas/v1-0: retired" in out
    assert "| `PMLP/FizPersonas/v1-0` | retired | 100.0% | 20 |" in out
    assert (data / "migration-report.html").read_text().count("<svg") == 3
    assert (data / "inventory.csv").read_text().startswith("wsdl,service,port")


def test_the_vehicle_register_walkthrough_scaffolds_decides_serves_and_shadows_at_100_percent(tmp_path: Path) -> None:
    blocks = walkthrough_commands(VEHICLES)
    assert len(blocks) >= 7
    data = tmp_path / "var" / "csdd-demo"
    result = _run(tmp_path, blocks, {"8481": free_port(), "8492": free_port()}, data)
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    out = result.stdout
    assert "constructs: search; criteria: OwnerPersonCode -> owners[].person_code, Fuel -> technical.fuel" in out
    assert "search: FindVehiclesByOwner (OwnerPersonCode -> owners[].person_code, Fuel -> technical.fuel)" in out
    assert "1 dataset(s) valid: csdd_tl_vehicle" in out
    assert "CSDD/Transportlidzekli/v1-0: 18 request(s), 18 equal, 0 different, 0 error(s): parity 100.0%" in out
    assert "CSDD/Transportlidzekli/v1-0: switched over" in out
    drafts = data / "drafts"
    assert "TODO(decide)" not in (drafts / "csdd_tl_vehicle.yaml").read_text()
    assert "owner: LV/GOV/40003345986/CSDD" in (drafts / "csdd_tl_vehicle.yaml").read_text()
