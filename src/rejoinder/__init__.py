"""Rejoinder: the OpenAI Responses API, served on top of any model provider."""

__version__ = "0.1.0"
