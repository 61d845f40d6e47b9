"""The HTTP server speaking Label Studio's ML-backend protocol."""

from prelabel._server.app import create_app, runtime_of

__all__ = ["create_app", "runtime_of"]
