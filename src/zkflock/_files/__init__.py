"""Fenced files: metadata (pure), objects, the plain view, SharedFile."""
