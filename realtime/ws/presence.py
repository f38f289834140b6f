"""A hub's presence in the Redis registry (realtime.ws.registry): its connections'
records, its stats and its heartbeat, written in one pipeline per burst of changes
and at least every `WS_HEARTBEAT_SECONDS`; the on-demand markets its sockets want are
refreshed with the heartbeat (realtime.ws.demand)."""

import asyncio
import contextlib
import json
import socket
import time

from django.conf import settings

from realtime.ws import demand, registry

_BATCH_SECONDS = 0.02


class HubPresence:
    """The registry half of `Hub`: `dirty` and `removed` connection ids are written at
    the next round; `wake` starts one."""

    def stats(self) -> dict:
        subscriptions = {
            channel: sum(len(c.symbols[channel]) for c in self.connections.values()) for channel in self.market
        }
        for channel, scopes in self.streams.items():
            subscriptions[channel] = sum(len(conns) for conns in scopes.values())
        return {
            "pid": self.pid,
            "host": socket.gethostname(),
            "connections": len(self.connections),
            "subscriptions": subscriptions,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "reported_at": time.time(),
        }

    async def _registry_write(self, *, beat: bool) -> None:
        dirty, removed = self.dirty, self.removed
        self.dirty, self.removed = set(), set()
        pipe = self.redis.pipeline(transaction=False)
        key = registry.conns_key(self.proc_id)
        if removed:
            pipe.hdel(key, *removed)
        records = {cid: json.dumps(self.connections[cid].record()) for cid in dirty if cid in self.connections}
        if records:
            pipe.hset(key, mapping=records)
        pipe.set(registry.proc_key(self.proc_id), json.dumps(self.stats()), ex=self.ttl)
        if beat:
            pipe.sadd(registry.PROCS_KEY, self.proc_id)
        if beat or records:
            pipe.expire(key, self.ttl)
        try:
            await pipe.execute()
            if beat:
                await demand.demand_refresh(
                    self.redis, proc_id=self.proc_id, markets=set(self.demand_refs), ttl=self.ttl
                )
        except Exception:
            self.dirty |= dirty
            self.removed |= removed
            raise

    async def _registry_loop(self) -> None:
        next_beat = time.monotonic() + settings.WS_HEARTBEAT_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(0.0, next_beat - time.monotonic()))
            self.wake.clear()
            await asyncio.sleep(_BATCH_SECONDS)  # let a burst of connects share one write
            beat = time.monotonic() >= next_beat
            try:
                await self._registry_write(beat=beat)
                self._ok("writing the registry")
            except Exception as error:
                self._failed("writing the registry", error)
                await asyncio.sleep(1)
            if beat:
                next_beat = time.monotonic() + settings.WS_HEARTBEAT_SECONDS
