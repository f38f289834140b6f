"""The feed's outbox: tick frames on their way to the Redis streams (`realtime.streams`).

A loop turn's frames go out in one EVALSHA that PUBLISHes each of them: still one
PUBLISH a tick on Redis, but one short command for the client to pack and parse, the
frames of a channel joined by newlines (JSON text never holds a raw one). redis-py's
asyncio client spends ~0.1 ms of Python on a command, and packs argument by argument:
at 5,000 ticks/s that was half a core, taken from the evaluation thread under the GIL.
Ticks are ephemeral: while Redis is down the oldest are dropped, never queued without
bound.
"""

import asyncio

OUTBOX_LIMIT = 20_000  # frames waiting for Redis; the oldest go first when it is down
PUBLISH_MANY = """
for i = 1, #ARGV, 2 do
  for frame in string.gmatch(ARGV[i + 1], "[^\\n]+") do redis.call("PUBLISH", ARGV[i], frame) end
end
"""
PUBLISH_CHUNK = 500  # frames a call: a script blocks Redis while it runs


def publish_args(items: list) -> list:
    """PUBLISH_MANY's arguments for (channel, frame) pairs: each channel, then its frames
    in order joined by newlines."""
    by_channel: dict = {}
    for channel, frame in items:
        by_channel.setdefault(channel, []).append(frame)
    return [part for channel, frames in by_channel.items() for part in (channel, "\n".join(frames))]


class Outbox:
    def __init__(self):
        self.items: list = []  # (channel, frame), oldest first
        self.ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.items)

    def put(self, channel: str, frame: str) -> None:
        if len(self.items) >= OUTBOX_LIMIT:
            del self.items[: len(self.items) // 2]
        self.items.append((channel, frame))
        self.ready.set()

    async def run(self, redis, *, ok, failed) -> None:
        """Publish whatever waits, whenever something does; `ok`/`failed` report the
        outcome (a failed round's frames are dropped)."""
        publish_many = redis.register_script(PUBLISH_MANY)
        while True:
            await self.ready.wait()
            self.ready.clear()
            items, self.items = self.items, []
            try:
                for start in range(0, len(items), PUBLISH_CHUNK):
                    await publish_many(args=publish_args(items[start : start + PUBLISH_CHUNK]))
                ok("publishing ticks")
            except Exception as error:
                failed("publishing ticks", error)
                await asyncio.sleep(1)
