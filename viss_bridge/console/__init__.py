"""The console: web pages for operators, security officers, data owners, migration teams and support.

Served at ``/console/`` by the bridge's own WSGI app (``server.py`` mounts :class:`web.Console`).
Uses the facade and the packages below it, never ``cli`` or ``server``; see docs/console.md.
"""
