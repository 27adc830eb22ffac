"""A CLI command that writes to a shared message log must know its node (issue 9 item 14g).

Run against a shared PostgreSQL without the node's settings, `clients add` used to start an unsealed
`node-1` chain beside the real nodes' chains, and `log verify` failed on it from then on.
"""

from __future__ import annotations

import json

from tests.conftest import cli


def test_a_log_writing_command_without_the_nodes_settings_is_refused(pg_database, dev_pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli("demo", "--prepare-only", "--data-dir", str(tmp_path), "--size", "20", "--database-url", pg_database)
    base = {"VISS_BRIDGE_DATABASE_URL": pg_database, "VISS_BRIDGE_CATALOG_DIR": str(tmp_path / "catalog")}
    node_a = {**base, "VISS_BRIDGE_NODE_ID": "node-a", "VISS_BRIDGE_SIGNING_CERT": str(dev_pki.node.cert),
              "VISS_BRIDGE_SIGNING_KEY": str(dev_pki.node.key), "VISS_BRIDGE_TRUST_ANCHORS": str(dev_pki.ca_cert)}
    cli("clients", "add", "LV/GOV/90000000001/FIRST", env=node_a)
    cli("clients", "grant", "LV/GOV/90000000001/FIRST", "fpr_person", env=node_a)  # audited: node-a's chain

    refused = cli("clients", "grant", "LV/GOV/90000000001/FIRST", "vzd_address", env=base, check=False)
    assert refused.returncode != 0
    assert "node(s) node-a, not of node 'node-1'" in refused.stderr, refused.stderr
    assert "VISS_BRIDGE_NODE_ID" in refused.stderr
    first = [line for line in cli("clients", "list", env=node_a).stdout.splitlines() if "/FIRST" in line]
    assert "vzd_address" not in first[0], first  # refused before anything was written

    # The node's id alone is enough: its chain exists and its bridge seals it.
    cli("clients", "grant", "LV/GOV/90000000001/FIRST", "vzd_address", env={**base, "VISS_BRIDGE_NODE_ID": "node-a"})
    cli("log", "seal", env=node_a)
    report = json.loads(cli("log", "verify", "--json", env=node_a).stdout)
    assert report["valid"], report
    assert [node["node"] for node in report["nodes"]] == ["node-a"], report
