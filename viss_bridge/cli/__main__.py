"""``python -m viss_bridge.cli``: the same command as ``viss-bridge``."""

from viss_bridge.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
