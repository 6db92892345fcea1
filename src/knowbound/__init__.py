"""knowbound: teach a language model to say "I don't know" when it doesn't know."""

__version__ = "0.1.0"
