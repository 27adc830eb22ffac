"""``viss-bridge demo`` runs a second node as the platform and serves one dataset through it, live and replicated;
the commands of docs/rest.md "Against the demo" run as written against it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import requests

from tests.conftest import DEMO_CONSUMER, ROOT, free_port


def test_demo_serves_a_dataset_answered_through_its_platform_node(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port, platform_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISS_BRIDGE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    out = tmp_path / "demo.out"
    with open(out, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "demo", "--data-dir",
                                    str(tmp_path / "var" / "demo"),
                                    "--size", "20", "--port", str(port), "--platform-port", str(platform_port),
                                    "--provider-port", "0", "--workers", "1"], stdout=sink, stderr=subprocess.STDOUT,
                                   env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while "is serving on" not in out.read_text(errors="replace") and time.monotonic() < deadline:
            assert process.poll() is None, out.read_text(errors="replace")
            time.sleep(0.3)
        text = out.read_text(errors="replace")
        assert f"http://127.0.0.1:{platform_port}/rest/service_list" in text  # both addresses printed
        assert f"http://127.0.0.1:{port}" in text
        example = re.search(r"/rest/platform_company/(\d+)", text)
        assert example and "platform_company_replica: " in text, text
        company = example.group(1)
        headers = {"X-Road-Client": DEMO_CONSUMER}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            live = requests.get(f"http://127.0.0.1:{port}/rest/platform_company/{company}", headers=headers, timeout=30)
            if live.status_code == 200:
                break
            time.sleep(0.3)
        assert live.status_code == 200, live.text
        # the platform node answers the main node's connection under the permission the demo seeded
        permission = re.search(r"permission (P-\S+) of connection (\S+)", text)
        assert permission
        on_platform = requests.get(f"http://127.0.0.1:{platform_port}/rest/ur_company/{company}", timeout=30,
                                   headers={"X-Road-Client": permission.group(2),
                                            "X-DAGR-Permission": permission.group(1)})
        assert on_platform.status_code == 200 and live.json() == on_platform.json()
        replica = requests.get(f"http://127.0.0.1:{port}/rest/platform_company_replica/{company}", headers=headers,
                               timeout=30)
        assert replica.json() == on_platform.json()
        _run_the_guides_commands(tmp_path, port, platform_port)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    # the platform node stopped with the demo
    try:
        requests.get(f"http://127.0.0.1:{platform_port}/health", timeout=2)
        stopped = False
    except requests.RequestException:
        stopped = True
    assert stopped


def _run_the_guides_commands(folder, port: int, platform_port: int) -> None:  # type: ignore[no-untyped-def]
    """docs/rest.md, "Against the demo": the block runs as written (the demo's data in ./var/demo)."""
    guide = (ROOT / "docs" / "rest.md").read_text(encoding="utf-8")
    section = guide.split("### Against the demo", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    block = (block.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{port}")
             .replace("http://127.0.0.1:8081", f"http://127.0.0.1:{platform_port}")
             .replace("/tmp/platform-drafts", str(folder / "drafts")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISS_BRIDGE_")}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert '"permission_number"' in result.stdout and "X-Exchange-Id:" in result.stdout
    assert "platform_company_replica: incremental sync" in result.stdout
    assert "drafted imported_ur_company" in result.stdout and "1 dataset(s) valid: imported_ur_company" in result.stdout
