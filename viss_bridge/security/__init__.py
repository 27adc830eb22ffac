"""Keys, certificates and trust; XML-DSig and WS-Security signing and verification.

Nothing here imports another project package: the message log, the facades
and the upstream clients all build on it.
"""
