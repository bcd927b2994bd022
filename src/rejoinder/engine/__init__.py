"""The life of one response: context, routing, model turn, building and storing."""
