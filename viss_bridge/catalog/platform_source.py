"""``source.kind: platform``: a dataset answered by a DAGR-style REST API (the generation-III platform).

The platform is the data distribution platform itself, or this bridge's own ``/rest`` face on another
node: ``GET {url}/{dataset}/{key}`` (``?field=value`` for composite keys) answers one record,
``GET {url}/{dataset}/changes?since=&limit=`` the changed-records feed. Configuration only (this
package imports nothing else of the project); ``upstream.platform`` makes the calls. The
connection's certificate, key, CA bundle and token are node settings (``platform_*``), never in a
manifest. Example::

    source:
      kind: platform
      mode: live                     # live: every lookup asks the platform; replicated: `viss-bridge sync` fills the store
      url: https://platform.example.gov.lv/rest   # the REST API's base (the path before service_list)
      dataset: ur_company            # the platform's name for it (default: this manifest's dataset)
      permission: "4f0c..."          # X-DAGR-Permission sent on every call (default: the platform_permission setting)
      page_size: 200                 # feed page size for sync (1-1000)
      timeouts: {connect: 2, operation: 10}
      retries: {attempts: 3, backoff: 0.2}
      breaker: {failures: 5, reset_after: 30}
      max_concurrent: 8
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field as PydField

from viss_bridge.catalog.legacy_source import Breaker, Retries, Timeouts

REMOTE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class PlatformSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["platform"]
    mode: Literal["live", "replicated"] = "live"
    url: Annotated[str, PydField(pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")]
    dataset: Annotated[str, PydField(pattern=REMOTE_NAME)] | None = None
    # X-DAGR-Permission: the platform's permission number this bridge reads under (digits, letters, '-').
    permission: Annotated[str, PydField(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = None
    # One breaker and concurrency cap per provider name; default derived from the URL's host and port.
    provider: Annotated[str, PydField(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] | None = None
    page_size: Annotated[int, PydField(ge=1, le=1000)] = 200
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    breaker: Breaker = Breaker()
    max_concurrent: Annotated[int, PydField(ge=1, le=1000)] = 8

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def provider_name(self) -> str:
        """The name the breaker, the metrics and the message log's provider leg use."""
        if self.provider:
            return self.provider
        parts = urlsplit(self.url)
        return "platform-" + (parts.netloc or "unknown").replace(":", "-")

    def remote_name(self, local: str) -> str:
        return self.dataset or local

    def settings_key(self) -> str:
        """What must be equal for two datasets to share one platform client (and its breaker)."""
        return self.model_dump_json(include={"url", "provider", "timeouts", "retries", "breaker", "max_concurrent"})
