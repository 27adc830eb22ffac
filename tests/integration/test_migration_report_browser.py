"""The HTML migration report, opened from a file in headless Chromium (Debian's ``chromium`` package).

The DOM Chromium builds is checked for the charts and their figures, and the
screenshot is checked pixel by pixel: the progress bar's coloured segments have
the widths the state counts call for, and the parity bars the lengths of their
percentages.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from lxml import html as lxml_html

from viss_bridge.db import make_engine
from viss_bridge.migration.report import (PARITY_BAR_WIDTH, PARITY_FULL, PARITY_LOW, PARITY_NEAR, PROGRESS_WIDTH,
                                          STATE_COLOURS, render_html)
from viss_bridge.migration.tracking import MigrationTracker

# name -> (final state, parity of its shadow run or None)
SERVICES = {
    "AAA/Inv1/v1-0": ("inventoried", None), "AAA/Inv2/v1-0": ("inventoried", None),
    "AAA/Inv3/v1-0": ("inventoried", None), "BBB/Map1/v1-0": ("mapped", None), "BBB/Map2/v1-0": ("mapped", None),
    "CCC/Sha1/v1-0": ("shadowing", 95.0), "CCC/Sha2/v1-0": ("shadowing", 80.0),
    "DDD/Swi1/v1-0": ("switched_over", 100.0), "DDD/Swi2/v1-0": ("switched_over", 100.0),
    "EEE/Ret1/v1-0": ("retired", 100.0),
}
ORDER = ("inventoried", "mapped", "shadowing", "switched_over", "retired")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> str:
    found = chromium()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (Debian package: chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--hide-scrollbars", "--force-device-scale-factor=1", *args]
    return subprocess.run(command, capture_output=True, timeout=90, check=True)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    tracker = MigrationTracker(make_engine(f"sqlite:///{folder / 'migration.sqlite'}"))
    tracker.create_schema()
    start = dt.datetime(2026, 10, 1, 9, tzinfo=dt.timezone.utc)
    for index, (name, (state, parity)) in enumerate(SERVICES.items()):
        tracker.add(name, title=name.split("/")[1] + "Service", operations=2, complexity=20 + index, at=start)
        moment = start + dt.timedelta(days=index)
        for step in ORDER[1:ORDER.index(state) + 1]:
            if step == "shadowing":
                tracker.record_shadow(name, 100, int(parity or 0), 100 - int(parity or 0), 0, at=moment)
            else:
                tracker.transition(name, step, at=moment, force=True)
            moment += dt.timedelta(days=1)
    path = folder / "migration-report.html"
    path.write_text(render_html(tracker.services(), tracker.events(),
                                generated=dt.datetime(2026, 11, 28, 8, tzinfo=dt.timezone.utc)), encoding="utf-8")
    return path


def test_report_dom_in_chromium_has_the_charts_and_the_right_numbers(browser: str, report_file: Path,
                                                                      tmp_path: Path) -> None:
    dom = _run(browser, tmp_path / "profile", "--dump-dom", report_file.as_uri()).stdout
    page = lxml_html.fromstring(dom)
    segments = {r.get("data-state"): int(r.get("data-count")) for r in page.xpath("//svg[@id='progress-chart']/rect"
                                                                                   "[@class='segment']")}
    assert segments == {"inventoried": 3, "mapped": 2, "shadowing": 2, "switched_over": 2, "retired": 1}
    bars = {r.get("data-service"): float(r.get("data-parity"))
            for r in page.xpath("//svg[@id='parity-chart']/rect[@class='parity-bar']")}
    assert bars == {n: p for n, (_, p) in SERVICES.items() if p is not None}
    assert len(page.xpath("//svg[@id='parity-chart']/text[@class='parity-missing']")) == 5
    tiles = {t.get("id"): t.xpath("string(.//div[@class='n'])") for t in page.xpath("//div[@class='tile']")}
    assert tiles == {"tile-total": "10", "tile-moved": "3 (30.0%)", "tile-parity": "95.0%", "tile-full": "3 of 5"}
    points = page.xpath("//svg[@id='timeline-chart']/circle[@class='timeline-point']")
    assert points and int(points[-1].get("data-moved")) == 3
    assert len(page.xpath("//table[@id='services']/tbody/tr")) == 10


def _mask(image, colour: str, tolerance: int = 2):  # type: ignore[no-untyped-def]
    """A 1-bit-like mask (255 where the pixel has this colour), computed by Pillow in C."""
    from PIL import ImageChops

    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    channels = [band.point(lambda v, c=c: 255 if abs(v - c) <= tolerance else 0)
                for band, c in zip(image.split(), rgb)]
    return ImageChops.multiply(ImageChops.multiply(channels[0], channels[1]), channels[2])


def _row_counts(mask) -> list[int]:  # type: ignore[no-untyped-def]
    """Pixels set in each row of a mask."""
    width, height = mask.size
    box = mask.getbbox()
    counts = [0] * height
    if box is None:
        return counts
    for y in range(box[1], box[3]):
        counts[y] = mask.crop((0, y, width, y + 1)).histogram()[255]
    return counts


def test_report_screenshot_shows_segments_and_bars_of_the_right_sizes(browser: str, report_file: Path,
                                                                       tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "report.png"
    _run(browser, tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,1600", report_file.as_uri())
    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 1600)
    width, height = image.size
    # not blank: a white page with a few colours would fail this
    colours = image.getcolors(maxcolors=width * height)
    assert len(colours) > 50 and max(count for count, _ in colours) < 0.9 * width * height

    # progress bar: the row with the most state-coloured pixels; each state's share of it = its share of services
    state_rows = {state: _row_counts(_mask(image, colour)) for state, colour in STATE_COLOURS.items()}
    best = max(range(height), key=lambda y: sum(rows[y] for rows in state_rows.values()))
    row = {state: rows[best] for state, rows in state_rows.items()}
    assert sum(row.values()) == pytest.approx(PROGRESS_WIDTH, abs=6)
    expected = Counter(state for state, _ in SERVICES.values())
    for state, count in expected.items():
        assert row[state] == pytest.approx(PROGRESS_WIDTH * count / len(SERVICES), abs=4), (state, row)

    # parity bars: horizontal runs of the parity colours, one per shadowed service, lengths = parity
    longest = {colour: max(_row_counts(_mask(image, colour))) for colour in (PARITY_FULL, PARITY_NEAR, PARITY_LOW)}
    assert longest[PARITY_FULL] == pytest.approx(PARITY_BAR_WIDTH, abs=4)
    assert longest[PARITY_NEAR] == pytest.approx(PARITY_BAR_WIDTH * 0.95, abs=4)
    assert longest[PARITY_LOW] == pytest.approx(PARITY_BAR_WIDTH * 0.80, abs=4)
    # three bars at 100%: three separate bands of rows in the full-parity colour
    full_rows = [count >= PARITY_BAR_WIDTH * 0.9 for count in _row_counts(_mask(image, PARITY_FULL))]
    bands = sum(1 for y in range(1, height) if full_rows[y] and not full_rows[y - 1])
    assert bands == 3
