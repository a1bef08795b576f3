"""Slack: verify the signature, translate slash commands and events, reply in Block Kit."""
