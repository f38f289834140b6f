"""Redis locations: one server (TCP or unix socket), several logical databases.

redis-py and channels-redis take ``redis://host:port/N`` or ``unix:///path.sock?db=N``;
Celery's broker and result backend take ``redis+socket:///path.sock?virtual_host=N``
for a unix socket (SPEC stack facts).
"""

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit


@dataclass(frozen=True)
class RedisLocation:
    scheme: str  # redis, rediss or unix
    netloc: str  # user:password@host:port (empty for unix)
    path: str  # socket path for unix
    db: int = 0  # the first database named by the URL: /N, or ?db=N for a unix socket

    @classmethod
    def parse(cls, url: str) -> "RedisLocation":
        parts = urlsplit(url)
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(f"REDIS_URL must be redis://, rediss:// or unix://, got {parts.scheme!r}")
        if parts.scheme == "unix":
            path, db = parts.path, parse_qs(parts.query).get("db", ["0"])[0]
        else:
            path, db = "", parts.path.strip("/") or "0"
        if not db.isdigit():
            raise ValueError(f"REDIS_URL's database must be a number, got {db!r}")
        return cls(scheme=parts.scheme, netloc=parts.netloc, path=path, db=int(db))

    @property
    def is_unix(self) -> bool:
        return self.scheme == "unix"

    def url(self, db: int) -> str:
        """URL for redis-py, Django's cache and channels-redis."""
        if self.is_unix:
            return f"unix://{self.path}?db={db}"
        return urlunsplit((self.scheme, self.netloc, f"/{db}", "", ""))

    def celery_url(self, db: int) -> str:
        """URL for Celery's broker and result backend."""
        if self.is_unix:
            return f"redis+socket://{self.path}?virtual_host={db}"
        return self.url(db)
