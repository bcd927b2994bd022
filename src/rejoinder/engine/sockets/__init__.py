"""WebSocket mode's meaning: one connection's lanes and remembered responses (`session`), and
steering a response while it runs (`steering`). The socket itself is `api.sockets`'."""

from rejoinder.engine.sockets.session import Session

__all__ = ["Session"]
