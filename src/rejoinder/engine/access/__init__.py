"""Who is asking, and what they may spend: a bearer token made into a `Principal` (`principals`), and
the rate limits and budgets every instance holds it to (`limits`)."""

from rejoinder.engine.access.limits import Limiter
from rejoinder.engine.access.principals import Access, Principal, declared, make_key, principal_of

__all__ = ["Access", "Limiter", "Principal", "declared", "make_key", "principal_of"]
