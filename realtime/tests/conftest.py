"""Each realtime test starts with empty cache types, zeroed hit/miss counters and a
fresh price-alert index."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_caches():
    from realtime import cache
    from realtime.services import price_alert_index

    cache.cache_clear(cache_type=cache.ALL)
    cache.cache_stats_reset()
    price_alert_index._index = None
    yield
    price_alert_index._index = None
