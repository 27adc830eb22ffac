"""Child processes the demo starts beside the bridge (legacy providers, the platform node)."""

from __future__ import annotations

import subprocess


def stop_child(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Ask a child to stop and wait for it; kill it if it has not gone after ``grace`` seconds, so the
    demo's Ctrl-C never leaves a provider or node holding its port."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
