"""The transports over the match service."""
