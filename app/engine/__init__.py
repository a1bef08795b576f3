"""The one object the adapters talk to: ask, search, entries, reload. Core."""
