"""The Responses API as data: requests, items and errors, decoded and validated in one place."""
