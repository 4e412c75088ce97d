"""The simulated derivatives gateway (Coinbase's Deribit-powered perpetuals venue): JSON-RPC over HTTP, the
trading WebSocket and the streams WebSocket, served by the same `engine sim` process and port.

Kept import-light: `engine.sim.config` reads `DerivativesConfig` from here at import time.
"""
