"""The shared replay table: an id is accepted once per scope and signer, and kept until its message expires."""

from __future__ import annotations

import datetime as dt

import pytest

from viss_bridge.db import make_engine
from viss_bridge.facade.replay import ReplayTable, TooLateToRemember

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture()
def table(tmp_path):  # type: ignore[no-untyped-def]
    replay = ReplayTable(make_engine(f"sqlite:///{tmp_path / 'replay.sqlite'}"))
    replay.create_schema()
    yield replay
    replay.engine.dispose()


def test_an_id_is_accepted_once_per_scope_and_signer(table) -> None:  # type: ignore[no-untyped-def]
    until = NOW + dt.timedelta(minutes=5)
    assert table.first_sighting("xroad", "LV/GOV/1/A", "m-1", until, now=NOW)
    assert not table.first_sighting("xroad", "LV/GOV/1/A", "m-1", until, now=NOW)
    assert table.first_sighting("xroad", "LV/GOV/2/B", "m-1", until, now=NOW)  # another signer's id
    assert table.first_sighting("viss", "LV/GOV/1/A", "m-1", until, now=NOW)  # another endpoint's ids
    long_id = "x" * 5000  # ids are the sender's choice: a long one is stored by its hash
    assert table.first_sighting("xroad", "LV/GOV/1/A", long_id, until, now=NOW)
    assert not table.first_sighting("xroad", "LV/GOV/1/A", long_id, until, now=NOW)


def test_an_id_is_kept_until_its_message_can_no_longer_be_accepted(table) -> None:  # type: ignore[no-untyped-def]
    until = NOW + dt.timedelta(minutes=5)
    table.first_sighting("xroad", "A", "m-2", until, now=NOW)
    assert table.purge(until - dt.timedelta(seconds=1)) == 0
    assert not table.first_sighting("xroad", "A", "m-2", until, now=until - dt.timedelta(seconds=1))
    assert table.purge(until + dt.timedelta(seconds=1)) == 1
    # a zone other than UTC in the Timestamp is the same moment
    other_zone = until.astimezone(dt.timezone(dt.timedelta(hours=2)))
    table.first_sighting("xroad", "A", "m-3", other_zone, now=NOW)
    assert table.purge(until - dt.timedelta(seconds=1)) == 0


def test_a_message_recorded_after_its_last_acceptable_moment_is_refused(table) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TooLateToRemember):
        table.first_sighting("viss", "A", "m-4", NOW - dt.timedelta(seconds=1), now=NOW)
