"""viss-bridge: keeps generation-II SOAP consumers working while their data moves to datasets."""

__version__ = "0.1.0"
