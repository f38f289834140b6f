"""The WebSocket registry in Redis (platform database), shared by every daphne process
and read by the management API (SPEC §7, Phase 4 `/websocket/*`).

Each hub (one per daphne process while it holds sockets) keeps:
- its id in the set `etrms:ws:procs`;
- `etrms:ws:proc:<id>`: its stats as JSON (pid, host, connections, subscriptions per
  channel, messages in and out), rewritten at every heartbeat with a TTL of
  `WS_REGISTRY_TTL_SECONDS`;
- `etrms:ws:conns:<id>`: a hash connection id -> the connection's record, with the
  same TTL, refreshed by the same heartbeat.
A process that dies stops refreshing: its keys expire and readers drop its id from
the set, so its connections leave the registry within the TTL.

Commands to the sockets (close one, broadcast) are PUBLISHed on `etrms:ws:control`;
every hub hears them and acts on its own sockets. A broadcast's hubs answer on a
per-request list with the number of sockets they wrote; PUBLISH returns how many hubs
heard it, so the caller knows how many answers to wait for.
"""

import json
import logging
import time
import uuid

from django.conf import settings

from etrms.redis_client import platform_redis

logger = logging.getLogger("realtime.ws")

PROCS_KEY = "etrms:ws:procs"
CONTROL_CHANNEL = settings.REDIS_PUBSUB_PREFIX + "ws:control"
REPLY_TTL_SECONDS = 10
BROADCAST_WAIT_SECONDS = 2.0


def proc_key(proc_id: str) -> str:
    return f"etrms:ws:proc:{proc_id}"


def conns_key(proc_id: str) -> str:
    return f"etrms:ws:conns:{proc_id}"


def reply_key(request_id: str) -> str:
    return f"etrms:ws:reply:{request_id}"


def _live_procs(client) -> list[tuple[str, dict]]:
    """(id, stats) of every hub whose heartbeat is alive; dead ids leave the set."""
    ids = sorted(member.decode() for member in client.smembers(PROCS_KEY))
    if not ids:
        return []
    raw = client.mget([proc_key(proc_id) for proc_id in ids])
    live, dead = [], []
    for proc_id, stats in zip(ids, raw, strict=True):
        if stats is None:
            dead.append(proc_id)
        else:
            live.append((proc_id, json.loads(stats)))
    if dead:
        client.srem(PROCS_KEY, *dead)
    return live


def connections_list(*, user_id=None) -> list[dict]:
    """Every live connection (or one user's), oldest first."""
    client = platform_redis()
    procs = _live_procs(client)
    pipe = client.pipeline(transaction=False)
    for proc_id, _ in procs:
        pipe.hvals(conns_key(proc_id))
    records = []
    for (proc_id, _), values in zip(procs, pipe.execute(), strict=True):
        for value in values:
            record = json.loads(value)
            if user_id is None or record["user_id"] == str(user_id):
                records.append({**record, "process": proc_id})
    records.sort(key=lambda record: (record["connected_at"], record["connection_id"]))
    return records


def connection_owner(connection_id: str) -> dict | None:
    for record in connections_list():
        if record["connection_id"] == connection_id:
            return record
    return None


def stats_get() -> dict:
    """Totals and per-process figures."""
    processes = [{"process": proc_id, **stats} for proc_id, stats in _live_procs(platform_redis())]
    channels: dict[str, int] = {}
    for stats in processes:
        for channel, count in stats.get("subscriptions", {}).items():
            channels[channel] = channels.get(channel, 0) + count
    return {
        "connections": sum(stats["connections"] for stats in processes),
        "subscriptions": dict(sorted(channels.items())),
        "messages_in": sum(stats["messages_in"] for stats in processes),
        "messages_out": sum(stats["messages_out"] for stats in processes),
        "processes": processes,
    }


def control_publish(message: dict) -> int:
    """PUBLISH a command to every hub; returns how many heard it."""
    return platform_redis().publish(CONTROL_CHANNEL, json.dumps(message))


def connection_close(*, connection_id: str) -> bool:
    """Close a connection wherever it lives; False if no live process holds it."""
    if connection_owner(connection_id) is None:
        return False
    control_publish({"op": "close", "connection_id": connection_id})
    return True


def broadcast_send(*, channel: str, message, symbols: list | None, sender: str, timestamp: str) -> int:
    """Send SPEC §7's broadcast frame to the subscribers of `channel` (of `symbols`,
    for ticker and trades) on every process; returns the sockets actually written."""
    request_id = uuid.uuid4().hex
    heard = control_publish(
        {
            "op": "broadcast",
            "request_id": request_id,
            "channel": channel,
            "symbols": symbols,
            "frame": {
                "channel": channel,
                "type": "broadcast",
                "from": sender,
                "message": message,
                "timestamp": timestamp,
            },
        }
    )
    logger.debug("broadcast %s heard by %s hubs", request_id, heard)
    client = platform_redis()
    delivered, deadline = 0, time.monotonic() + BROADCAST_WAIT_SECONDS
    for _ in range(heard):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        answer = client.blpop([reply_key(request_id)], timeout=max(left, 0.01))
        if answer is None:
            break
        delivered += int(answer[1])
    client.delete(reply_key(request_id))
    return delivered
