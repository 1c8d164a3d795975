"""Renderers: pure functions from a results document to a published form."""
