"""What can go wrong on the provider leg, in words the facades turn into faults."""

from __future__ import annotations

# Causes; the facades answer Server.ServerProxy.ServiceFailed.<cause>.
PROVIDER_TIMEOUT = "ProviderTimeout"  # no answer within the operation timeout
PROVIDER_FAULT = "ProviderFault"  # the provider answered with a SOAP fault
PROVIDER_UNAVAILABLE = "ProviderUnavailable"  # refused, dropped, HTTP 5xx page, or the breaker is open
PROVIDER_BUSY = "ProviderBusy"  # the cap on concurrent calls to this provider is reached
INVALID_RESPONSE = "InvalidProviderResponse"  # an answer that is not the contract's
PROVIDER_SECURITY = "ProviderSecurityError"  # a response signature missing, wrong or untrusted
PROVIDER_CONFIG = "ProviderConfigurationError"  # WSDL cannot be loaded, operation unknown, keys missing
LOGGING_FAILED = "LoggingFailed"  # the provider exchange could not be handed to the message log


class UpstreamError(Exception):
    """A provider call that did not produce a usable answer.

    ``called`` is False when the bridge answered without contacting the
    provider (breaker open, concurrency cap), which tests and metrics check.
    """

    def __init__(self, cause: str, provider: str, message: str, called: bool = True,
                 provider_fault_code: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.provider = provider
        self.message = message
        self.called = called
        self.provider_fault_code = provider_fault_code

    @property
    def is_client_side(self) -> bool:
        """A provider fault whose code blames our request (soap:Client) says nothing about its health."""
        code = (self.provider_fault_code or "").split(":")[-1]
        return self.cause == PROVIDER_FAULT and code.startswith("Client")
PLATFORM_ACCESS_DENIED = "PlatformAccessDenied"  # the platform refused this bridge's connection (401/403, no permission)
