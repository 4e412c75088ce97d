"""A high-throughput async trading engine for Coinbase, with a Rust signing core."""

__version__ = "0.1.0"

from engine.rest import Client as Client  # the REST client (issue 4)
