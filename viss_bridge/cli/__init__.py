"""The ``viss-bridge`` command. Thin: each module parses one command group's arguments, calls the packages, prints.

``root`` holds the group; importing the modules below registers their commands on it.
"""

from __future__ import annotations

from viss_bridge.cli.root import main
from viss_bridge.cli import access, catalog, clients, console, demo, log, migrate, run  # noqa: F401  (registers the commands)

__all__ = ["main"]
