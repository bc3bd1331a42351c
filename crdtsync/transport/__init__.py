"""Asyncio + websockets transport for the sync protocol."""
