"""Who owns what: collections and API keys."""
