"""Routers by resource: calls (upload and status), tickets (read), health."""
