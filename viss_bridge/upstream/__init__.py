"""Reaching legacy providers: one shared zeep client per provider, live lookups, sync jobs.

Depends on ``catalog``, ``security`` and ``xml`` only; the facades and the
server use it (never the other way round).
"""
