"""Durable state over SQLAlchemy Core: SQLite embedded by default, PostgreSQL for clusters."""
