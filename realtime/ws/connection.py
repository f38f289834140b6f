"""One socket as the hub sees it: who it is, what it subscribed to, and a bounded,
conflating buffer in front of a writer (SPEC §7, §11).

A frame goes straight to the socket while the socket keeps up. When it does not (its
transport's buffer is over Twisted's 64 KB, or an ASGI send is still in flight), frames
wait in `pending`, in order: market frames under one key per (channel, exchange,
symbol) and user-stream snapshots under one key per channel, so the latest replaces
the one waiting (latest wins, memory bounded by the subscriptions); alerts, acks,
errors and broadcasts each keep their own entry and are never dropped. A socket with
more than `WS_RELIABLE_BUFFER` of those waiting is closed with 4008 and a reason; it
reconnects and catches up with `since_alert_id`.
"""

import asyncio
import itertools
import logging
import struct
from collections import OrderedDict
from functools import partial

from realtime.ws.metrics import frames
from realtime.ws.protocol import StreamView

logger = logging.getLogger("realtime.ws")

CLOSE_TOKEN_EXPIRED = 4401
CLOSE_TOO_SLOW = 4008
CLOSE_BY_OFFICER = 4000
_ABORT_AFTER_SECONDS = 2.0  # after a close, for a TCP connection that does not go by itself


class Frame:
    """A payload (JSON text as UTF-8 bytes) and, made once for every socket that takes
    it, its WebSocket text frame."""

    __slots__ = ("_wire", "data")

    def __init__(self, data: bytes):
        self.data = data
        self._wire = None

    @classmethod
    def of(cls, text: str) -> "Frame":
        return cls(text.encode())

    def wire(self) -> bytes:
        if self._wire is None:
            length = len(self.data)
            if length < 126:
                header = bytes((0x81, length))
            elif length < 65536:
                header = struct.pack("!BBH", 0x81, 126, length)
            else:
                header = struct.pack("!BBQ", 0x81, 127, length)
            self._wire = header + self.data
        return self._wire


class DaphneWriter:
    """Writes pre-framed bytes to daphne's Twisted transport, and learns from it (as its
    streaming producer) when the client stops reading.

    Whoever closes the WebSocket, its TCP connection goes at most `_ABORT_AFTER_SECONDS`
    later. autobahn answers a client's close frame with `dropConnection(abort=False)`: its
    state is CLOSED at once, but Twisted's `loseConnection` waits for the send buffer to
    drain, which never happens for a client that stopped reading (then sent its close):
    daphne never saw the disconnect and the socket stayed in the hub and the registry."""

    def __init__(self, protocol):
        self.protocol = protocol
        self.transport = protocol.transport
        self.loop = asyncio.get_running_loop()
        self.paused = False
        self.on_resume = None
        self.producing = True
        drop = protocol.dropConnection

        def drop_then_abort(abort: bool = False) -> None:
            drop(abort)
            if not abort:
                self._abort_later()

        protocol.dropConnection = drop_then_abort
        # Daphne hands over the HTTP channel's transport on upgrade with that channel still
        # registered as its producer (it would only stop reading the socket): take its place.
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()
        try:
            self.transport.registerProducer(self, True)
        except RuntimeError:  # write without back-pressure
            self.producing = False
            logger.warning("WebSocket: no back-pressure on %r", self.transport)

    @property
    def open(self) -> bool:
        return self.protocol.state == self.protocol.STATE_OPEN

    def write(self, frame: Frame) -> None:
        self.transport.write(frame.wire())

    # Twisted's IPushProducer
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if self.on_resume is not None:
            self.on_resume()

    def stopProducing(self) -> None:
        self.paused = True

    def close(self, code: int, reason: str) -> None:
        if self.open:
            self.protocol.sendClose(code=code, reason=reason)
        self._abort_later()

    def _abort_later(self) -> None:
        self.loop.call_later(_ABORT_AFTER_SECONDS, self._abort)

    def _abort(self) -> None:
        # The TCP connection, not the WebSocket's state: CLOSED comes before the TCP
        # connection goes, and never does while a stalled client's buffer is full.
        if not self.transport.disconnected:
            self.transport.abortConnection()

    def detach(self) -> None:
        self.on_resume = None
        if self.producing:
            self.producing = False
            try:
                self.transport.unregisterProducer()
            except Exception:  # the transport is gone already
                logger.debug("unregisterProducer failed", exc_info=True)


class AsgiWriter:
    """Any other ASGI server (and Channels' test communicator): one send in flight at a
    time; while it is, the connection buffers."""

    def __init__(self, send):
        self.send = send
        self.paused = False
        self.on_resume = None
        self.open = True
        self._tasks: set = set()

    def write(self, frame: Frame) -> None:
        self.paused = True
        task = asyncio.get_running_loop().create_task(self._send(frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, frame: Frame) -> None:
        try:
            await self.send({"type": "websocket.send", "text": frame.data.decode()})
        except Exception:
            self.open = False
            logger.debug("ASGI send failed", exc_info=True)
            return
        self.paused = False
        if self.on_resume is not None:
            self.on_resume()

    def close(self, code: int, reason: str) -> None:
        if self.open:
            self.open = False
            task = asyncio.get_running_loop().create_task(
                self.send({"type": "websocket.close", "code": code, "reason": reason})
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def detach(self) -> None:
        self.on_resume = None
        self.open = False


def writer_for(send):
    """Daphne passes `partial(server.handle_reply, protocol)`: write to that protocol's
    transport directly. Anything else goes through ASGI sends."""
    if isinstance(send, partial) and send.args and hasattr(getattr(send.args[0], "transport", None), "write"):
        return DaphneWriter(send.args[0])
    return AsgiWriter(send)


_sequence = itertools.count()


class Connection:
    def __init__(self, *, connection_id: str, client_id: str, user, writer, connected_at: str, reliable_max: int):
        self.id = connection_id
        self.client_id = client_id
        self.user_id = str(user.pk)
        self.username = user.username
        self.officer = bool(getattr(user, "is_risk_officer", False))
        self.connected_at = connected_at
        self.writer = writer
        writer.on_resume = self.flush
        self.reliable_max = reliable_max
        self.pending: OrderedDict = OrderedDict()
        self.reliable_waiting = 0
        self.symbols: dict[str, set] = {"ticker": set(), "trades": set()}
        self.streams: dict[str, StreamView] = {}  # ETRMS channel -> what it covers
        self.bare: str | None = None  # the one channel of a /ws/<channel> socket, sent bare
        self.closed = False
        self.held: list | None = None  # live alerts held while a replay is being sent
        self.hub = None  # set by the hub: counts what is written
        self.sent = 0

    # --- what the registry shows ------------------------------------------------------------
    def subscriptions(self) -> list[str]:
        items = [f"{channel}:{symbol}" for channel, symbols in self.symbols.items() for symbol in sorted(symbols)]
        for channel, view in sorted(self.streams.items(), key=lambda item: item[0]):
            items.extend(view.labels(channel, self.user_id))
        return items

    def record(self) -> dict:
        return {
            "connection_id": self.id,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "username": self.username,
            "connected_at": self.connected_at,
            "subscriptions": self.subscriptions(),
        }

    # --- delivery ---------------------------------------------------------------------------
    def offer(self, frame: Frame, key=None) -> bool:
        """Queue or write `frame`. `key` conflates (latest wins); None means the frame is
        never dropped. Returns whether the frame was taken (False once closed)."""
        if self.closed:
            return False
        if not self.pending and not self.writer.paused:
            self._write(frame)
            return True
        if key is None:
            if self.reliable_waiting >= self.reliable_max:
                self.close(
                    CLOSE_TOO_SLOW, f"too slow: over {self.reliable_max} alerts waiting; reconnect with since_alert_id"
                )
                return False
            self.reliable_waiting += 1
            key = ("r", next(_sequence))
        self.pending[key] = frame
        return True

    def _write(self, frame: Frame) -> None:
        if not self.writer.open:
            return
        self.writer.write(frame)
        self.sent += 1
        frames["out"] += 1
        if self.hub is not None:
            self.hub.messages_out += 1

    def flush(self) -> None:
        while self.pending and not self.writer.paused and not self.closed:
            key, frame = self.pending.popitem(last=False)
            if key[0] == "r":
                self.reliable_waiting -= 1
            self._write(frame)

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.pending.clear()
        self.reliable_waiting = 0
        logger.info("WebSocket %s closed by the server: %s %s", self.id, code, reason)
        self.writer.close(code, reason)
