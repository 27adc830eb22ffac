"""Demo legacy providers: generation-II registers that still only speak SOAP.

Each register is a small Spyne service with its own hand-written WSDL (in
``wsdl/``), answering from the same synthetic world as the demo store, so a
call through the bridge and a call to the provider can be compared field by
field. A control endpoint makes them slow, faulty or unreachable for tests.
"""

from viss_bridge.demo.legacy_providers.registers import REGISTERS, Register, wsdl_path
from viss_bridge.demo.legacy_providers.server import ProviderServer, start_provider

__all__ = ["REGISTERS", "Register", "ProviderServer", "start_provider", "wsdl_path"]
