"""A socket's bounded, conflating buffer (realtime.ws.connection): what a slow client gets."""

from types import SimpleNamespace

from realtime.ws.connection import CLOSE_TOO_SLOW, Connection, Frame


class StalledWriter:
    """A transport that has stopped taking bytes until `resume()`."""

    def __init__(self):
        self.paused = True
        self.open = True
        self.on_resume = None
        self.written: list[bytes] = []
        self.closed_with = None

    def write(self, frame: Frame) -> None:
        self.written.append(frame.data)

    def resume(self) -> None:
        self.paused = False
        self.on_resume()

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


def connection(writer, reliable_max: int = 3) -> Connection:
    user = SimpleNamespace(pk="u1", username="u1", is_risk_officer=False)
    return Connection(
        connection_id="c1", client_id="x", user=user, writer=writer, connected_at="now", reliable_max=reliable_max
    )


def test_slow_client_gets_the_latest_tick_per_symbol_and_every_alert_in_order():
    writer = StalledWriter()
    conn = connection(writer, reliable_max=10)
    for price in range(100):
        conn.offer(Frame.of(f"BTC {price}"), ("ticker", "paper", "BTCUSDT"))
        conn.offer(Frame.of(f"ETH {price}"), ("ticker", "paper", "ETHUSDT"))
        if price in (10, 50):
            conn.offer(Frame.of(f"alert {price}"))
    assert len(conn.pending) == 4  # two symbols + two alerts, however many ticks came
    writer.resume()
    assert writer.written == [b"BTC 99", b"ETH 99", b"alert 10", b"alert 50"]
    conn.offer(Frame.of("BTC 100"), ("ticker", "paper", "BTCUSDT"))
    assert writer.written[-1] == b"BTC 100"  # a reading client gets every frame at once


def test_client_too_slow_even_for_alerts_is_closed_with_a_clear_reason():
    writer = StalledWriter()
    conn = connection(writer, reliable_max=3)
    assert all(conn.offer(Frame.of(f"alert {n}")) for n in range(3))
    assert not conn.offer(Frame.of("alert 3"))
    code, reason = writer.closed_with
    assert code == CLOSE_TOO_SLOW and "too slow" in reason and "since_alert_id" in reason
    assert conn.closed and not conn.pending
    assert not conn.offer(Frame.of("alert 4"), None)


def test_frame_is_framed_once_as_a_websocket_text_frame():
    small, medium, large = Frame(b"hello"), Frame(b"y" * 300), Frame(b"z" * 70000)
    assert small.wire() == b"\x81\x05hello" and small.wire() is small.wire()
    assert medium.wire()[:4] == b"\x81\x7e\x01\x2c" and len(medium.wire()) == 304
    assert large.wire()[:2] == b"\x81\x7f" and int.from_bytes(large.wire()[2:10], "big") == 70000
