"""For course authors: the self-check, scaffolding a new exercise, and assignment packs."""
