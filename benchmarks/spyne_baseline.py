"""A bare Spyne 2.14 service answering ``fpr_person`` from memory: the benchmark's baseline.

Why it exists: a number such as "the bridge serves N lookups/s" says little on
its own on a shared 2-core machine. Measured in the same run against the
cheapest possible Spyne service with the same wire contract, the ratio tells
how much the bridge adds on top of Spyne itself (X-Road header checks, the
hardened pre-parse, access policy, the SQL lookup, header echo with
requestHash, metrics and logging).

What "the same" means here:

* the same namespace and operation (``fpr_person`` in
  ``http://vissbridge.gov.lv/xroad/datasets``), so the load generator posts
  byte-for-byte the same X-Road request bodies to both servers (Spyne ignores
  the X-Road SOAP headers because no ``__in_header__`` is declared);
* the same response shape: ``fpr_personResponse/record`` typed
  ``fpr_person_record`` with the fields, order and XSD types that the demo
  manifest ``fpr_person.yaml`` gives the bridge, ``addresses`` as repeated
  elements of ``fpr_person_addresses``;
* the same protocols as the bridge's Spyne app (``Soap11(validator=None)`` in,
  ``Soap11(cleanup_namespaces=True)`` out, both lxml-based) and the same
  gunicorn setup (sync workers, no access log).

What it deliberately does not do: no database, no header parsing or echo, no
logging or metrics. The record is fixed except ``person_code``, which echoes
the request so the load generator can verify every answer the same way for
both targets.

Run it with ``python benchmarks/spyne_baseline.py --port 8090 --workers 2`` or
``gunicorn -w 2 -b 127.0.0.1:8090 benchmarks.spyne_baseline:application``
from the repository root. It binds loopback only.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from spyne import Application, ComplexModel, Date, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

#: Same as ``viss_bridge.facade.xroad.XROAD_TNS``; copied rather than imported so
#: the baseline stays independent of the code it is compared with.
TNS = "http://vissbridge.gov.lv/xroad/datasets"


def _text(max_length: int, required: bool = True) -> Any:
    """A string element constrained like the manifest's ``max_length`` field."""
    return Unicode(max_length, min_occurs=1 if required else 0, nillable=False)


_DATE = Date.customize(min_occurs=1, nillable=False)
_OPTIONAL_DATE = Date.customize(min_occurs=0, nillable=False)


class fpr_person_addresses(ComplexModel):  # noqa: N801 - type name as the bridge publishes it
    """One declared or additional address of a person."""

    __namespace__ = TNS
    _type_info = [
        ("address_code", _text(9)),
        ("kind", _text(20)),
        ("valid_from", _DATE),
    ]


class fpr_person_record(ComplexModel):  # noqa: N801 - type name as the bridge publishes it
    """The natural persons register record, field for field as in ``fpr_person.yaml``."""

    __namespace__ = TNS
    _type_info = [
        ("person_code", _text(12)),
        ("first_name", _text(100)),
        ("last_name", _text(100)),
        ("birth_date", _DATE),
        ("gender", _text(1)),
        ("citizenship", _text(3)),
        ("status", _text(20)),
        ("death_date", _OPTIONAL_DATE),
        ("declared_address_code", _text(9)),
        ("addresses", fpr_person_addresses.customize(min_occurs=0, max_occurs="unbounded", nillable=False)),
    ]


# A typical demo person (two addresses, Latvian diacritics), so the baseline
# serialises about as many elements and characters as the bridge does.
_ADDRESSES = [
    fpr_person_addresses(address_code="103451478", kind="declared", valid_from=dt.date(2023, 10, 3)),
    fpr_person_addresses(address_code="167213630", kind="additional", valid_from=dt.date(2011, 10, 25)),
]
_FIXED: dict[str, Any] = {
    "first_name": "Ainārs",
    "last_name": "Grīnbergs",
    "birth_date": dt.date(2000, 1, 21),
    "gender": "M",
    "citizenship": "LVA",
    "status": "active",
    "declared_address_code": "103451478",
    "addresses": _ADDRESSES,
}


class PersonLookup(ServiceBase):
    """The one operation, named and wrapped exactly like the bridge's dataset operation."""

    @rpc(_text(12), _args=("person_code",), _returns=fpr_person_record.customize(min_occurs=0),
         _operation_name="fpr_person", _in_message_name="fpr_person",
         _out_message_name="fpr_personResponse", _out_variable_name="record")
    def fpr_person(ctx: Any, person_code: str) -> fpr_person_record:  # noqa: N805 - Spyne passes ctx
        return fpr_person_record(person_code=person_code, **_FIXED)


spyne_app = Application([PersonLookup], tns=TNS, name="spyne_baseline",
                        in_protocol=Soap11(validator=None),
                        out_protocol=Soap11(cleanup_namespaces=True))

#: The WSGI callable (``benchmarks.spyne_baseline:application`` for gunicorn).
application = WsgiApplication(spyne_app)


def serve(host: str, port: int, workers: int) -> None:
    """Serve :data:`application` under gunicorn with the bridge's worker settings."""
    from gunicorn.app.base import BaseApplication

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "spyne-baseline",
        "limit_request_line": 8190,
    }

    class Runner(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    Runner().run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (keep it loopback)")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    serve(args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
