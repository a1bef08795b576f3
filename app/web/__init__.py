"""The HTTP adapters: the app factory, JSON API, chat and review pages, admin, Slack, middleware."""
