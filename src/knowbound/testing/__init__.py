"""Helpers for tests and benchmarks: tiny local models and a local OpenAI-compatible server."""
