"""Serving voice agents: the ASGI application, its carriers and the call state store."""
