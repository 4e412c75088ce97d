"""Coinbase's global perpetuals on the Deribit-powered gateway: JSON-RPC 2.0 over WebSocket and HTTP.

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/guides/derivatives/overview
"""
