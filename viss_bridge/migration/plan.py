"""Shadow plans: several legacy services compared in one run (``migrate shadow --plan FILE``).

::

    # shadow-plan.yaml (paths are relative to this file)
    rate: 5                # requests per second for every service unless it says otherwise
    burst: 1
    timeout: 10
    services:
      - service: PMLP/FizPersonas/v1-0
        legacy_url: http://fpr.pmlp.example/ivis/FizPersonas/v1-0
        bridge_url: http://bridge.example/legacy/fpr
        wsdl: wsdl/PMLP-FizPersonas-v1-0.wsdl
        requests: requests/persons          # a folder of saved requests ...
        unordered: [Person/Address]
        rate: 2
      - service: VZD/Adreses/v1-0
        legacy_url: http://var.vzd.example/ivis/Adreses/v1-0
        bridge_url: http://bridge.example/legacy/var
        from_log: {service: legacy/var, since: "2026-11-01T00:00:00Z"}   # ... or the message log

Every service gets its own token bucket (they are usually different providers)
and is compared, reported and recorded on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from viss_bridge.catalog.yaml_lines import YamlSyntaxError, load_with_lines, validation_problem


class PlanError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FromLog(_Strict):
    service: str | None = None
    leg: Literal["consumer", "provider"] = "consumer"
    since: str | None = None
    until: str | None = None


class PlannedService(_Strict):
    service: Annotated[str, Field(min_length=1)]
    legacy_url: Annotated[str, Field(pattern=r"^https?://")]
    bridge_url: Annotated[str, Field(pattern=r"^https?://")]
    wsdl: str | None = None
    requests: str | None = None
    from_log: FromLog | None = None
    unordered: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    rate: Annotated[float, Field(gt=0, le=1000)] | None = None
    burst: Annotated[int, Field(ge=1, le=1000)] | None = None
    limit: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "PlannedService":
        if (self.requests is None) == (self.from_log is None):
            raise ValueError("give either 'requests' (a folder) or 'from_log'")
        return self


class ShadowPlan(_Strict):
    rate: Annotated[float, Field(gt=0, le=1000)] = 5.0
    burst: Annotated[int, Field(ge=1, le=1000)] = 1
    timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    services: Annotated[tuple[PlannedService, ...], Field(min_length=1)]


def load_plan(file: str | Path) -> tuple[ShadowPlan, Path]:
    """The plan and the folder its relative paths start from; PlanError names the file and line."""
    path = Path(file)
    try:
        data, lines = load_with_lines(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror}") from None
    except YamlSyntaxError as exc:
        raise PlanError(f"{path}:{exc.line}: not valid YAML: {exc}") from None
    try:
        plan = ShadowPlan.model_validate(data)
    except ValidationError as exc:
        line, label, message = validation_problem(exc.errors(), lines, data)
        where = f"{path}:{line}" if line else str(path)
        raise PlanError(f"{where}: {label + ': ' if label else ''}{message}") from None
    names = [s.service for s in plan.services]
    if len(set(names)) != len(names):
        raise PlanError(f"{path}: a service is listed twice")
    return plan, path.parent
