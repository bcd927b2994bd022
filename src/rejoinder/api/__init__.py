"""The HTTP surface: routes, authentication, SSE encoding and error envelopes."""
