"""The console's pages, one module per role; each module lists its pages in ``PAGES``."""

from __future__ import annotations

from viss_bridge.console.web import Page


def all_pages() -> list[Page]:
    from viss_bridge.console.pages import migration, operator, owner, security, support

    return [*security.PAGES, *owner.PAGES, *migration.PAGES, *operator.PAGES, *support.PAGES]
