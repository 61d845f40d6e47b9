"""The HTTP server speaking Label Studio's ML-backend protocol."""

from prelabel._server.app import create_app, make_backend

__all__ = ["create_app", "make_backend"]
