"""Migration states in the database (SQLite and PostgreSQL), the commands that move them, and the reports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from viss_bridge.cli import main
from viss_bridge.db import make_engine
from viss_bridge.migration.report import render_html, render_markdown, timeline_points
from viss_bridge.migration.tracking import MigrationTracker, TransitionRefused, service_id, summary
from viss_bridge.migration.wsdl import read_wsdl

ROOT = Path(__file__).resolve().parents[2]
PERSONS = ROOT / "wsdl" / "PMLP-FizPersonas-v1-0.wsdl"
ADDRESSES = ROOT / "wsdl" / "VZD-Adreses-v1-0.wsdl"


def _walk_through(tracker: MigrationTracker) -> None:
    tracker.create_schema()
    day = dt.datetime(2026, 11, 2, 9, tzinfo=dt.timezone.utc)
    assert tracker.record_inventory(read_wsdl(str(PERSONS)), at=day) == ["PMLP/FizPersonas/v1-0"]
    tracker.record_inventory(read_wsdl(str(ADDRESSES)), at=day)
    tracker.record_inventory(read_wsdl(str(ADDRESSES)), at=day)  # again: figures updated, no second entry
    assert [s.state for s in tracker.services()] == ["inventoried", "inventoried"]
    with pytest.raises(TransitionRefused, match="can move to: mapped"):
        tracker.transition("VZD/Adreses/v1-0", "switched_over")
    tracker.transition("VZD/Adreses/v1-0", "mapped", datasets=["vzd_address"], at=day + dt.timedelta(days=1))
    tracker.transition("VZD/Adreses/v1-0", "shadowing", at=day + dt.timedelta(days=1, hours=1))
    with pytest.raises(TransitionRefused, match="no shadow comparison"):
        tracker.transition("VZD/Adreses/v1-0", "switched_over")
    state = tracker.record_shadow("VZD/Adreses/v1-0", 40, 38, 2, 0, at=day + dt.timedelta(days=2))
    assert (state.state, state.parity, state.shadow_requests) == ("shadowing", 95.0, 40)
    with pytest.raises(TransitionRefused, match="95.0% parity"):
        tracker.transition("VZD/Adreses/v1-0", "switched_over")
    tracker.record_shadow("VZD/Adreses/v1-0", 40, 40, 0, 0, at=day + dt.timedelta(days=3))
    tracker.transition("VZD/Adreses/v1-0", "switched_over", at=day + dt.timedelta(days=4), note="parity 100%")
    # a first shadow run moves an inventoried service straight to shadowing
    assert tracker.record_shadow("PMLP/FizPersonas/v1-0", 10, 9, 0, 1, at=day + dt.timedelta(days=4)).state == "shadowing"
    tracker.transition("PMLP/FizPersonas/v1-0", "switched_over", force=True, note="accepted one error")
    tracker.transition("PMLP/FizPersonas/v1-0", "shadowing", note="rolled back")
    with pytest.raises(TransitionRefused, match="no service 'nope'"):
        tracker.transition("nope", "mapped")


def test_states_transitions_parity_gate_and_history_on_sqlite(tmp_path: Path) -> None:
    tracker = MigrationTracker(make_engine(f"sqlite:///{tmp_path / 'm.sqlite'}"))
    _walk_through(tracker)
    _check(tracker)


@pytest.mark.postgres
def test_states_transitions_parity_gate_and_history_on_postgresql(pg_database: str) -> None:
    tracker = MigrationTracker(make_engine(pg_database))
    _walk_through(tracker)
    _check(tracker)


def _check(tracker: MigrationTracker) -> None:
    states = {s.name: s for s in tracker.services()}
    assert states["VZD/Adreses/v1-0"].state == "switched_over"
    assert states["VZD/Adreses/v1-0"].datasets == ("vzd_address",)
    assert states["PMLP/FizPersonas/v1-0"].parity == 90.0
    history = [(e.from_state, e.to_state) for e in tracker.events("VZD/Adreses/v1-0")]
    assert history == [(None, "inventoried"), ("inventoried", "mapped"), ("mapped", "shadowing"),
                       ("shadowing", "switched_over")]
    forced = [e for e in tracker.events("PMLP/FizPersonas/v1-0") if e.to_state == "switched_over"][0]
    assert forced.note.endswith("(forced)")
    assert [r["parity"] for r in tracker.shadow_history("VZD/Adreses/v1-0")] == [95.0, 100.0]
    figures = summary(tracker.services())
    assert figures["counts"]["switched_over"] == 1 and figures["moved_percent"] == 50.0
    assert figures["mean_parity"] == 95.0


def test_service_ids() -> None:
    assert service_id("http://ivis.eps.gov.lv/XMLSchemas/PMLP/FizPersonas/v1-0", "X") == "PMLP/FizPersonas/v1-0"
    assert service_id("urn:lv:vsaa:pabalsti", "PabalstiService") == "PabalstiService"


def test_cli_status_mark_and_report(tmp_path: Path) -> None:
    env = {"VISS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite'}"}
    runner = CliRunner(env=env)
    assert runner.invoke(main, ["migrate", "inventory", str(PERSONS), str(ADDRESSES), "--record"]).exit_code == 0
    marked = runner.invoke(main, ["migrate", "mark", "VZD/Adreses/v1-0", "mapped", "--dataset", "vzd_address"])
    assert marked.exit_code == 0 and "VZD/Adreses/v1-0: mapped" in marked.output
    refused = runner.invoke(main, ["migrate", "mark", "VZD/Adreses/v1-0", "retired"])
    assert refused.exit_code == 1 and "can move to: inventoried, shadowing" in refused.output
    history = runner.invoke(main, ["migrate", "history", "VZD/Adreses/v1-0"])
    assert history.exit_code == 0 and "inventoried  mapped" in history.output, history.output
    status = runner.invoke(main, ["migrate", "status"])
    assert "VZD/Adreses/v1-0" in status.output and "mapped" in status.output
    data = json.loads(runner.invoke(main, ["migrate", "status", "--format", "json"]).output)
    assert data["summary"]["counts"] == {"inventoried": 1, "mapped": 1, "shadowing": 0, "switched_over": 0,
                                         "retired": 0}
    report = runner.invoke(main, ["migrate", "report", "-o", str(tmp_path / "r.html"), "--markdown",
                                  str(tmp_path / "r.md")])
    assert report.exit_code == 0, report.output
    html = (tmp_path / "r.html").read_text()
    assert '<rect class="segment" data-state="mapped" data-count="1"' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from anywhere
    assert "| mapped | 1 |" in (tmp_path / "r.md").read_text()


def test_timeline_counts_services_moved_per_day() -> None:
    from viss_bridge.migration.tracking import Event

    day = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    events = [Event("a", day, None, "inventoried", "", ""), Event("a", day + dt.timedelta(days=1), "shadowing",
                                                                  "switched_over", "", ""),
              Event("b", day + dt.timedelta(days=2), "shadowing", "switched_over", "", ""),
              Event("a", day + dt.timedelta(days=3), "switched_over", "shadowing", "", "rolled back")]
    assert [v for _, v in timeline_points(events)] == [0, 1, 2, 1]
    assert "services" in render_markdown([]) and "<svg" in render_html([], [])
