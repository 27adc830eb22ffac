"""Access-control steps land on the signed message log, whether made over SOAP or by an operator's command."""

from __future__ import annotations

import json

from tests.conftest import cli


def log_entries(bridge, service: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    out = cli("log", "find", "--service", service, "--json", env=bridge.env()).stdout
    return json.loads(out) if out.strip().startswith("[") else [json.loads(line) for line in out.splitlines() if line]


def test_grant_and_revoke_by_command_are_on_the_chain_and_the_log_verifies(bridge, dev_pki):  # type: ignore[no-untyped-def]
    client = "LV/GOV/90000056357/RIGA-DOME"
    out = cli("clients", "grant", client, "viis_education", "--purpose", "school places", "--quota", "5",
              env=bridge.env()).stdout
    number = out.split("(permission ")[1].rstrip(")\n")
    granted = [e for e in log_entries(bridge, "permission/permission.granted") if e["message_id"] == number]
    assert len(granted) == 1 and granted[0]["client"].startswith("cli:")
    cli("clients", "revoke", client, "viis_education", env=bridge.env())
    revoked = [e for e in log_entries(bridge, "permission/permission.revoked") if e["message_id"] == number]
    assert len(revoked) == 1
    # The record's bytes are the event itself: the permission's history is provable from the log alone.
    export = cli("log", "find", "--message-id", number, env=bridge.env()).stdout
    assert "2 record(s)" in export
    verify = cli("log", "verify", "--trust", str(dev_pki.ca_cert), env=bridge.env(), check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
