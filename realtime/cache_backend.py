"""Django's Redis cache backend with hit/miss counting and a prefix-safe clear.

Each of SPEC §8's cache types is a `CACHES` alias served by `CountingRedisCache`, with
its own `KEY_PREFIX` (`etrms:<cache_type>`) and `TIMEOUT`, all on the cache database
(`REDIS_DB_CACHE`). The backend differs from Django's `RedisCache` in three ways:

- `get()` counts a hit or a miss in the Redis hash `etrms:cache:stats` (field
  `<cache_type>:hits` / `:misses`) in the same round trip as the GET (one Lua call),
  so every process's reads add up and the figures are exact; `get_many()` counts each
  key it asks for. Writes, `has_key()` and the uncounted `peek()` are not reads.
- `clear()` removes only this cache type's keys (SCAN + UNLINK over its prefix), never
  FLUSHDB: the broker, the results, the channel layer and the other cache types keep
  their keys whatever database they share.
- `peek()` reads without counting (a single-flight leader re-checking the cache).
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

STATS_KEY = "etrms:cache:stats"
SCAN_COUNT = 1000

_GET_COUNTED = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':hits', 1)
else
  redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':misses', 1)
end
return value
"""


class CountingRedisCacheClient(RedisCacheClient):
    def __init__(self, servers, *, cache_type: str, **options):
        super().__init__(servers, **options)
        self.cache_type = cache_type
        self._script = None

    def get(self, key, default):
        client = self.get_client(key)
        if self._script is None:
            self._script = client.register_script(_GET_COUNTED)
        value = self._script(keys=[key, STATS_KEY], args=[self.cache_type], client=client)
        return default if value is None else self._serializer.loads(value)

    def peek(self, key, default):
        return super().get(key, default)

    def peek_many(self, keys):
        return super().get_many(keys)

    def get_many(self, keys):
        keys = list(keys)
        client = self.get_client(None)
        values = client.mget(keys)
        hits = sum(value is not None for value in values)
        pipeline = client.pipeline(transaction=False)
        if hits:
            pipeline.hincrby(STATS_KEY, f"{self.cache_type}:hits", hits)
        if len(keys) - hits:
            pipeline.hincrby(STATS_KEY, f"{self.cache_type}:misses", len(keys) - hits)
        pipeline.execute()
        return {
            key: self._serializer.loads(value) for key, value in zip(keys, values, strict=True) if value is not None
        }

    def unlink_matching(self, pattern: str) -> int:
        """UNLINK every key matching `pattern` (SCAN, in batches); how many were removed."""
        client = self.get_client(None, write=True)
        removed = 0
        batch = []
        for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= SCAN_COUNT:
                removed += client.unlink(*batch)
                batch = []
        if batch:
            removed += client.unlink(*batch)
        return removed

    def unlink(self, keys: list[str]) -> int:
        if not keys:
            return 0
        return int(self.get_client(None, write=True).unlink(*keys))


def escape_glob(text: str) -> str:
    """`text` matched literally in a SCAN MATCH pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


class CountingRedisCache(RedisCache):
    """`CACHES[alias]` takes `CACHE_TYPE` (the name counted in the stats) beside Django's keys."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self.cache_type = params.get("CACHE_TYPE") or params.get("KEY_PREFIX") or "default"
        self._class = CountingRedisCacheClient
        self._options = {**self._options, "cache_type": self.cache_type}

    @property
    def pattern(self) -> str:
        """SCAN pattern of every key of this cache (all versions)."""
        return f"{escape_glob(self.key_prefix)}:*"

    def peek(self, key, default=None, version=None):
        key = self.make_and_validate_key(key, version=version)
        return self._cache.peek(key, default)

    def peek_many(self, keys, version=None) -> dict:
        """Uncounted `get_many` (a writer merging with what is cached)."""
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        return {made[key]: value for key, value in self._cache.peek_many(list(made)).items()}

    def redis(self):
        """The redis-py client of this cache's database."""
        return self._cache.get_client(None, write=True)

    def clear(self) -> int:
        """Remove this cache type's keys only; how many were removed."""
        return self._cache.unlink_matching(self.pattern)

    def unlink_keys(self, keys: list[str], version=None) -> int:
        """Remove the named entries; how many existed."""
        return self._cache.unlink([self.make_and_validate_key(key, version=version) for key in keys])

    def unlink_matching(self, key_pattern: str, version=None) -> int:
        """Remove the entries whose key (as given to get/set) matches the SCAN pattern."""
        version = self.version if version is None else version
        return self._cache.unlink_matching(f"{escape_glob(self.key_prefix)}:{version}:{key_pattern}")
