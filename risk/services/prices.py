"""Price samples for the volatility breaker, in Redis, shared by every process (web,
workers, feed).

- `risk:prices:<exchange>:<symbol>`: a sorted set of `<ms>:<price>` members scored by
  time, trimmed to the longest window a breaker may use;
- `risk:vol`: a hash of summaries, one per (market, window):
  `computed_at|samples|low|high|first|last` (prices as their exact text);
- `risk:vol:by-price:<window>:<market>`: the same members scored by price, only those
  in the window as of `risk:vol:cut:<market>` (a hash: window -> the window start it
  was last brought to), so a summary's low and high cost O(log n), not a rescan;
- `risk:vol:cand:<window>:<floor>`: the markets whose last summary could trip a
  volatility breaker of that window whose lowest threshold is `floor` % (at least two
  samples, covering 80 % of the window, a range of at least `floor`), with a `:ready`
  key once every summary has been judged against that floor.

Recording a sample refreshes its market's summaries and candidacy, server-side, for
the windows the enabled volatility breakers use. A summary only gets truer with time
when it says a market cannot trip (samples leave the window and the range narrows
until a new sample comes, which refreshes it), so readers look only at candidates: one
SMEMBERS and a small HMGET, however many markets a book holds. A candidate's summary
older than a second is computed again before it is used. When the floor changes (a
breaker edited, added, removed), the first reader judges every stored summary against
the new floor once (HSCAN, not a blocking script).

These scripts touch keys they build themselves: fine on one Redis, which is what the
platform database is (channels-redis may shard; this does not).
"""

import time
from decimal import Decimal

from etrms.formatting import decimal_plain
from etrms.redis_client import platform_redis
from risk.constants import VOLATILITY_WINDOW_RANGE

KEY_PREFIX = "risk:prices:"
SUMMARY_KEY = "risk:vol"
CANDIDATES_PREFIX = "risk:vol:cand:"
BY_PRICE_PREFIX = "risk:vol:by-price:"  # <window>:<market>
CUTS_PREFIX = "risk:vol:cut:"  # <market>
RETENTION_SECONDS = VOLATILITY_WINDOW_RANGE[1]  # the longest window a breaker may use
FRESH_SECONDS = 1.0
COVERAGE = 0.8
LENIENCY = 1 - 1e-9  # candidacy is judged in doubles: err towards "candidate"

_SUMMARIZE = (
    f"local RETENTION = {RETENTION_SECONDS}\n"
    + """
local function score_text(x) return string.format('%.17g', x) end

local function price_of(member)
  return tonumber(string.sub(member, string.find(member, ':', 1, true) + 1))
end

local function add_by_price(by_price, members)
  for j = 1, #members, 500 do
    local args = {}
    for k = j, math.min(j + 499, #members) do
      args[#args + 1] = price_of(members[k])
      args[#args + 1] = members[k]
    end
    redis.call('ZADD', by_price, unpack(args))
  end
end

-- Bring the market's samples-by-price set of `window` to the window ending at `now`:
-- built from the time set once, then only the samples that left or (re)entered the
-- window since the last call move, plus `new` ({member, score} just added to the time
-- set). Returns the set's key and the window's first score.
local function maintain(key, market, window, now, new)
  local by_price, cuts = 'risk:vol:by-price:' .. window .. ':' .. market, 'risk:vol:cut:' .. market
  local cutoff = now - window
  local previous = redis.call('HGET', cuts, window)
  if not previous then
    redis.call('DEL', by_price)
    add_by_price(by_price, redis.call('ZRANGEBYSCORE', key, cutoff, '+inf'))
  else
    previous = tonumber(previous)
    if cutoff > previous then
      local left = redis.call('ZRANGEBYSCORE', key, previous, '(' .. score_text(cutoff))
      for j = 1, #left, 500 do
        redis.call('ZREM', by_price, unpack(left, j, math.min(j + 499, #left)))
      end
    elseif cutoff < previous then
      add_by_price(by_price, redis.call('ZRANGEBYSCORE', key, cutoff, '(' .. score_text(previous)))
    end
    for _, sample in ipairs(new) do
      if sample[2] >= cutoff then
        redis.call('ZADD', by_price, price_of(sample[1]), sample[1])
      else
        redis.call('ZREM', by_price, sample[1])
      end
    end
  end
  redis.call('HSET', cuts, window, score_text(cutoff))
  redis.call('EXPIRE', cuts, RETENTION)
  redis.call('EXPIRE', by_price, RETENTION)
  return by_price, cutoff
end

-- The summary of the samples of `key` from `now - window` on, from its by-price set:
-- O(log n), whatever the number of samples in the window.
local function summarize(key, market, now, window, new)
  local by_price, cutoff = maintain(key, market, window, now, new)
  local count = redis.call('ZCARD', by_price)
  if count < 2 then
    return tostring(now) .. '|' .. tostring(count), false
  end
  local lowest = redis.call('ZRANGE', by_price, 0, 0, 'WITHSCORES')
  local top = redis.call('ZRANGE', by_price, -1, -1, 'WITHSCORES')[2]
  local highest = redis.call('ZRANGEBYSCORE', by_price, top, top, 'LIMIT', 0, 1)[1]  -- the earliest of a tie
  local low_text = string.sub(lowest[1], string.find(lowest[1], ':', 1, true) + 1)
  local high_text = string.sub(highest, string.find(highest, ':', 1, true) + 1)
  local low, high = tonumber(low_text), tonumber(high_text)
  local first = redis.call('ZRANGEBYSCORE', key, cutoff, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)[2]
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
  local summary = table.concat({tostring(now), tostring(count), low_text, high_text, first, last}, '|')
  return summary, (tonumber(last) - tonumber(first) >= 0.8 * window and low > 0), low, high
end

local function judge(market, window, floor_text, summary, covered, low, high)
  local set = 'risk:vol:cand:' .. window .. ':' .. floor_text
  if covered and (high - low) / low * 100 >= tonumber(floor_text) * (1 - 1e-9) then
    redis.call('SADD', set, market)
  else
    redis.call('SREM', set, market)
  end
end
"""
)

# KEYS: SUMMARY_KEY, then one sorted set per market. ARGV: now, number of windows,
# (window, floor) per window, then per market its name, its sample count and (member,
# score) per sample. A by-price set of a window not maintained here is dropped (it would
# miss these samples) and built again when next read.
_RECORD = (
    _SUMMARIZE
    + """
local now, nwindows = tonumber(ARGV[1]), tonumber(ARGV[2])
local maintained = {}
for w = 1, nwindows do maintained[ARGV[1 + 2 * w]] = true end
local position = 3 + 2 * nwindows
for i = 2, #KEYS do
  local key, market, count = KEYS[i], ARGV[position], tonumber(ARGV[position + 1])
  position = position + 2
  local new = {}
  for _ = 1, count do
    local member, score = ARGV[position], tonumber(ARGV[position + 1])
    redis.call('ZADD', key, score, member)
    new[#new + 1] = {member, score}
    position = position + 2
  end
  local cuts = redis.call('HKEYS', 'risk:vol:cut:' .. market)
  for _, window in ipairs(cuts) do
    if not maintained[window] then
      redis.call('HDEL', 'risk:vol:cut:' .. market, window)
      redis.call('DEL', 'risk:vol:by-price:' .. window .. ':' .. market)
    end
  end
  for w = 1, nwindows do
    local window, floor_text = ARGV[1 + 2 * w], ARGV[2 + 2 * w]
    local summary, covered, low, high = summarize(key, market, now, tonumber(window), new)
    redis.call('HSET', KEYS[1], market .. ':' .. window, summary)
    judge(market, window, floor_text, summary, covered, low, high)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - RETENTION)  -- after: every window is past it
  redis.call('EXPIRE', key, RETENTION)
end
return #KEYS - 1
"""
)

# KEYS: SUMMARY_KEY, then one sorted set per request. ARGV: now, then per request its
# market, window and floor. Returns the fresh summaries (also stored and judged).
_REFRESH = (
    _SUMMARIZE
    + """
local now = tonumber(ARGV[1])
local out = {}
for i = 2, #KEYS do
  local market, window, floor_text = ARGV[3 * i - 4], ARGV[3 * i - 3], ARGV[3 * i - 2]
  local summary, covered, low, high = summarize(KEYS[i], market, now, tonumber(window), {})
  redis.call('HSET', KEYS[1], market .. ':' .. window, summary)
  judge(market, window, floor_text, summary, covered, low, high)
  out[i - 1] = summary
end
return out
"""
)
_scripts: dict = {}


def _script(name: str, source: str):
    if name not in _scripts:
        _scripts[name] = platform_redis().register_script(source)
    return _scripts[name]


def _key(market: str) -> str:
    return f"{KEY_PREFIX}{market}"


def _by_price_key(window: int, market: str) -> str:
    return f"{BY_PRICE_PREFIX}{window}:{market}"


def _cuts_key(market: str) -> str:
    return f"{CUTS_PREFIX}{market}"


def _floor_text(floor) -> str:
    return decimal_plain(Decimal(str(floor)))


def _candidates_key(window: int, floor) -> str:
    return f"{CANDIDATES_PREFIX}{window}:{_floor_text(floor)}"


def _current_floors() -> dict:
    from risk.services.snapshots import config_view_get

    return config_view_get().volatility_floors()


def price_samples_record(samples: list[tuple[str, str, Decimal, float]], *, floors: dict | None = None) -> None:
    """Record `(exchange, symbol, price, unix_seconds)` samples and refresh their
    markets' summaries and candidacy for `floors` ({window seconds: lowest threshold
    %}; default: those of the enabled volatility breakers), in one Redis call. Every new
    sample must come through here: readers trust what a summary says cannot trip."""
    if not samples:
        return
    if floors is None:
        floors = _current_floors()
    by_market: dict = {}
    for exchange, symbol, price, at in samples:
        by_market.setdefault(f"{exchange}:{symbol}", []).append((f"{int(at * 1000)}:{price}", at))
    keys = [SUMMARY_KEY]
    args = [repr(time.time()), len(floors)]
    for window, floor in sorted(floors.items()):
        args += [int(window), _floor_text(floor)]
    for market, members in by_market.items():
        keys.append(_key(market))
        args += [market, len(members)]
        for member, at in members:
            args += [member, repr(at)]
    _script("record", _RECORD)(keys=keys, args=args)


def _parse(summary) -> tuple:
    """(computed_at, samples, low, high, span), or (computed_at, samples) below two samples."""
    parts = (summary.decode() if isinstance(summary, bytes) else summary).split("|")
    if len(parts) == 2:
        return float(parts[0]), float(parts[1])
    computed_at, count, low, high, first, last = parts
    return float(computed_at), float(count), Decimal(low), Decimal(high), float(last) - float(first)


def _could_trip(summary: tuple, window: int, floor) -> bool:
    if len(summary) == 2 or summary[4] < COVERAGE * window or summary[2] <= 0:
        return False
    low, high = float(summary[2]), float(summary[3])
    return (high - low) / low * 100 >= float(floor) * LENIENCY


def _judge_all(window: int, floor) -> None:
    """Judge every stored summary of `window` against a new `floor` (HSCAN, in slices),
    then mark the candidate set ready."""
    client = platform_redis()
    key = _candidates_key(window, floor)
    suffix = f":{window}"
    batch = []
    for field, summary in client.hscan_iter(SUMMARY_KEY, match=f"*{suffix}", count=1000):
        field = field.decode()
        if _could_trip(_parse(summary), window, floor):
            batch.append(field[: -len(suffix)])
        if len(batch) >= 1000:
            client.sadd(key, *batch)
            batch = []
    if batch:
        client.sadd(key, *batch)
    client.set(f"{key}:ready", "1")


def _market(name: str) -> tuple:
    """(exchange, symbol) of a market's name `<exchange>:<symbol>` (exchange ids hold no colon)."""
    exchange, _, symbol = name.partition(":")
    return exchange, symbol


def price_ranges_get(requests: set[tuple[str, str, int]], *, floors: dict, now: float | None = None) -> dict:
    """{(exchange, symbol, window): (low, high, span_seconds)} for each requested market
    whose samples could trip a breaker with the window's lowest threshold `floors[window]`."""
    by_window: dict = {}
    for exchange, symbol, window in requests:
        by_window.setdefault(window, set()).add((exchange, symbol))
    return market_ranges_get(by_window, floors=floors, now=now)


def market_ranges_get(by_window: dict, *, floors: dict, now: float | None = None) -> dict:
    """`price_ranges_get` for {window: {(exchange, symbol)}}: the work is the candidate
    markets' (a few), not the requested ones' (a book's thousands)."""
    pipe = platform_redis().pipeline(transaction=False)
    windows = market_ranges_queue(pipe, by_window, floors=floors)
    if not windows:
        return {}
    return market_ranges_read(windows, pipe.execute(), by_window, floors=floors, now=now)


def market_ranges_queue(pipe, by_window: dict, *, floors: dict) -> list:
    """Queue on `pipe` the first reads of `market_ranges_get` (two replies a window, in
    the order of the windows returned), so a caller may send them with its own."""
    windows = sorted(window for window, markets in by_window.items() if markets)
    for window in windows:
        key = _candidates_key(window, floors[window])
        pipe.exists(f"{key}:ready")
        pipe.smembers(key)
    return windows


def market_ranges_read(windows: list, replies: list, by_window: dict, *, floors: dict, now: float | None) -> dict:
    """`market_ranges_get` from the replies to what `market_ranges_queue` queued: one more
    call only when a candidate market is in the book (or a floor was never judged)."""
    now = time.time() if now is None else now
    client = platform_redis()
    wanted = []  # (market, window) whose summary to read
    for index, window in enumerate(windows):
        ready, members = replies[2 * index], replies[2 * index + 1]
        requested = by_window[window]
        if not ready:
            _judge_all(window, floors[window])
            members = client.smembers(_candidates_key(window, floors[window]))
            # requested markets with samples but no summary for this window yet
            names = sorted(f"{exchange}:{symbol}" for exchange, symbol in requested)
            summaries = client.hmget(SUMMARY_KEY, [f"{name}:{window}" for name in names])
            wanted += [(name, window) for name, summary in zip(names, summaries, strict=True) if summary is None]
        candidates = (member.decode() for member in members)
        wanted += [(market, window) for market in sorted(m for m in candidates if _market(m) in requested)]
    if not wanted:
        return {}
    summaries = client.hmget(SUMMARY_KEY, [f"{market}:{window}" for market, window in wanted])
    ranges, refresh = {}, []
    for (market, window), raw in zip(wanted, summaries, strict=True):
        summary = _parse(raw) if raw is not None else None
        if summary is None or now - summary[0] > FRESH_SECONDS:
            refresh.append((market, window))
        elif _could_trip(summary, window, floors[window]):
            ranges[(*_market(market), window)] = summary[2:]
    if refresh:
        keys = [SUMMARY_KEY, *(_key(market) for market, _ in refresh)]
        args = [repr(now)]
        for market, window in refresh:
            args += [market, window, _floor_text(floors[window])]
        for (market, window), raw in zip(refresh, _script("refresh", _REFRESH)(keys=keys, args=args), strict=True):
            summary = _parse(raw)
            if len(summary) > 2:
                ranges[(*_market(market), window)] = summary[2:]
    return ranges


def price_samples_forget(markets: list[str]) -> None:
    """Forget every sample, summary and candidacy of `markets` (`<exchange>:<symbol>`)."""
    client = platform_redis()
    pipe = client.pipeline(transaction=False)
    for market in markets:
        pipe.delete(_key(market), *(_by_price_key(int(window), market) for window in client.hkeys(_cuts_key(market))))
        pipe.delete(_cuts_key(market))
    fields = [field for field in client.hkeys(SUMMARY_KEY) if field.decode().rsplit(":", 1)[0] in set(markets)]
    if fields:
        pipe.hdel(SUMMARY_KEY, *fields)
    for key in client.scan_iter(match=CANDIDATES_PREFIX + "*"):
        if not key.endswith(b":ready"):
            pipe.srem(key, *markets)
    pipe.execute()
