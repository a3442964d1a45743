"""The embedded page (/ui) and its JSON API (/api/v1), served by the admin server."""

from otelml.gateway.ui.api import routes

__all__ = ["routes"]
