"""Venue adapters: one package per Coinbase venue."""
