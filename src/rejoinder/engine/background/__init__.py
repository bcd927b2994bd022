"""Background runs: queued in the database and run by whichever instance claims them
(`runner`), followed live from any instance (`feed`, `follow`), and announced by signed
webhooks when they end (`webhooks`)."""

from rejoinder.engine.background.feed import Feed, open_feed
from rejoinder.engine.background.follow import Send, follow
from rejoinder.engine.background.runner import Runner
from rejoinder.engine.background.webhooks import Deliverer, outbox

__all__ = ["Deliverer", "Feed", "Runner", "Send", "follow", "open_feed", "outbox"]
