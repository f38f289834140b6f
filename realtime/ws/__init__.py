"""The WebSocket machinery: connection, streams, fan-out, presence, payloads and metrics."""
