"""certs/ is where the development PKI goes, and git never takes a key or certificate from it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT, cli


def test_certs_init_writes_into_certs_and_git_ignores_every_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = tmp_path / "certs"
    cli("certs", "init", "--dir", str(out))
    made = sorted(p.name for p in out.iterdir())
    assert "ca.key" in made and "node-signing.key" in made
    # The same names inside the repository's certs/ folder are ignored; its README is not.
    paths = [f"certs/{name}" for name in made]
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *paths], capture_output=True, text=True)
    assert sorted(ignored.stdout.split()) == sorted(paths)
    kept = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "certs/README.md", "certs/.gitignore"],
                          capture_output=True, text=True)
    assert kept.returncode == 1 and kept.stdout == ""
