"""Who is asking, and what they may spend: a bearer token made into a `Principal` (`keys`), and
the rate limits and budgets every instance holds it to (`limits`)."""

from rejoinder.engine.access.keys import Access, Principal, declared, make_key, principal_of
from rejoinder.engine.access.limits import Limiter

__all__ = ["Access", "Limiter", "Principal", "declared", "make_key", "principal_of"]
