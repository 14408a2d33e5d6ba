"""The gateway's WebSocket side: the hub, both protocols and the feed (gateway/ws/app.py routes)."""
