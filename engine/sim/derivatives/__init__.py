"""The simulated derivatives gateway (Coinbase's Deribit-powered perpetuals venue): JSON-RPC over HTTP, the
trading WebSocket and the streams WebSocket, served by the same `engine sim` process and port.

What it follows: Coinbase's migration guide for the gateway,
https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/guides/derivatives/technical,
its API reference,
https://docs.cdp.coinbase.com/api-reference/coinbase-deribit-app-api/rest-api/authentication/post-publicauth,
and, where those are silent, what the official SDK (coinbase-advanced-py, `coinbase.deribit`) sends.

Kept import-light: `engine.sim.config` reads `DerivativesConfig` from here at import time.
"""
