"""respmatrix: a cross-engine compatibility suite for Redis and Valkey.

Real servers from a local engine store, real client libraries, and every divergence between
engines explained by a registry entry with a source.
"""

__version__ = "0.1.0"
