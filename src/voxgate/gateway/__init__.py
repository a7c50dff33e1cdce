"""The asyncio adapter: WebSocket server, one deadline heap, bus listeners."""
