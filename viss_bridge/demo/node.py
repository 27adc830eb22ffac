"""A demo node's message log: sealed with a development PKI, time-stamped by a development TSA process.

The demo shows what a production node does (seals, time-stamps, signed responses) without any
configuration; an operator's own signing key always wins.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from viss_bridge.config import Settings, replace


def _die_with_parent() -> None:
    """Linux: the demo's helper process gets SIGTERM when the demo exits, however it exits."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def demo_message_log(settings: Settings, data_dir: Path) -> tuple[Settings, Any]:
    """The demo seals its log with a development PKI and real time-stamps from a development TSA process."""
    import subprocess
    import time

    from viss_bridge.security.pki import init_dev_pki

    if settings.signing_key:  # configured by the operator: use theirs
        return settings, None
    pki = init_dev_pki(data_dir / "certs")
    changes: dict[str, Any] = {"signing_cert": str(pki.node.cert), "signing_key": str(pki.node.key),
                               "trust_anchors": str(pki.ca_cert), "sign_responses": settings.sign_responses or "xroad"}
    process = None
    if not settings.tsa_url:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            tsa_port = sock.getsockname()[1]
        process = subprocess.Popen([sys.executable, "-m", "viss_bridge.cli", "tsa", "serve", "--cert", str(pki.tsa.cert),
                                    "--key", str(pki.tsa.key), "--port", str(tsa_port)], stdout=subprocess.DEVNULL,
                                   preexec_fn=_die_with_parent)
        changes["tsa_url"] = f"http://127.0.0.1:{tsa_port}/"
        time.sleep(0.5)
    return replace(settings, **changes), process
