"""Object ids in OpenAI's style: a type prefix and 48 random hex digits."""

import os


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(24).hex()}"
