/* ETRMS dashboard: loads each panel from the REST API, then keeps it live from the
 * WebSocket (ticker, positions, accounts, risk-metrics, alerts) with REST reconciliation. */
"use strict";

(function (ns) {
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const $ = (selector) => document.querySelector(selector);
  const LEVELS = ["low", "moderate", "high", "critical"];
  const state = {
    filter: "",
    positions: [],
    risk: { users: [] },
    alerts: [],
    usernames: {},
    lastAlertId: null,
    maxPriceAge: 10,
  };
  const session = new ns.Session(config.token_url);
  const board = new ns.PriceBoard($("#prices"));
  const ctx = { config, usernames: state.usernames, onAlert: alertAction };

  function scoped(path) {
    if (!state.filter) return path;
    return `${path}${path.includes("?") ? "&" : "?"}user_id=${encodeURIComponent(state.filter)}`;
  }
  function mine(item) {
    return !state.filter || !item || !item.user_id || item.user_id === state.filter;
  }
  function notice(text) {
    $("#alerts-count").textContent = text;
  }

  /* At most one call in flight per loader, and at most one every `gap` ms. */
  function throttled(loader, gap) {
    let running = null;
    let queued = false;
    let last = 0;
    const run = async () => {
      if (running) {
        queued = true;
        return running;
      }
      const wait = Math.max(0, last + gap - Date.now());
      running = new Promise((resolve) => setTimeout(resolve, wait))
        .then(loader)
        .catch((error) => console.warn("dashboard:", error.message))
        .finally(() => {
          last = Date.now();
          running = null;
          if (queued) {
            queued = false;
            run();
          }
        });
      return running;
    };
    return run;
  }

  // --- loaders ---------------------------------------------------------------------------
  function flattenPositions(data) {
    return Object.values(data.exchanges || {}).flatMap((group) => group.positions || []);
  }
  function positionKey(p) {
    return `${p.user_id || config.user_id}|${p.exchange}|${p.symbol}|${p.side}`;
  }
  function statuses() {
    return state.risk.users.flatMap((user) => user.statuses.map((s) => ({ ...s, user_id: user.user_id })));
  }
  function drawPositions() {
    const positions = state.positions.filter(mine);
    ns.render.positions($("#positions tbody"), positions, statuses(), ctx);
    const total = positions.reduce((sum, p) => sum + Number(p.notional || 0), 0);
    const pnl = positions.reduce((sum, p) => sum + Number(p.unrealized_pnl || 0), 0);
    $("#positions-totals").textContent = `notional ${ns.fmt(total)} · unrealised ${ns.fmt(pnl)}`;
    positions.forEach((p) => board.ensure(p.symbol, p.exchange));
    subscribeTickers();
  }
  const loadPositions = throttled(async () => {
    const body = await session.api("GET", scoped("/api/v1/positions/"));
    state.positions = flattenPositions(body.data);
    drawPositions();
  }, 2000);

  const loadRisk = throttled(async () => {
    state.risk = await session.api("GET", scoped("/api/v1/dashboard/risk"));
    state.risk.users.forEach((user) => {
      state.usernames[user.user_id] = user.username;
    });
    fillFilter();
    ns.render.metrics($("#metrics"), state.risk, ctx);
    const worst = state.risk.users.reduce((best, u) => Math.max(best, LEVELS.indexOf(u.risk_level)), 0);
    $("#risk-level").dataset.level = LEVELS[worst];
    $("#risk-level").textContent = `risk ${LEVELS[worst]}`;
    drawPositions();
  }, 3000);

  function drawAlerts() {
    ns.render.alerts($("#alerts"), state.alerts.filter(mine), ctx);
    const open = state.alerts.filter((a) => mine(a) && a.status === "triggered").length;
    notice(`${open} open`);
  }
  const loadAlerts = throttled(async () => {
    const body = await session.api("GET", scoped("/api/v1/risk/alerts?limit=50"));
    const fresh = new Set(state.alerts.filter((a) => a.fresh).map((a) => a.id));
    state.alerts = body.alerts.map((a) => ({ ...a, fresh: fresh.has(a.id) }));
    if (body.alerts.length && !state.lastAlertId) state.lastAlertId = body.alerts[0].id;
    drawAlerts();
  }, 1500);

  const loadBreakers = throttled(async () => {
    const view = await session.api("GET", scoped("/api/v1/dashboard/breakers"));
    $("#dry-run").textContent = view.dry_run ? "dry run" : "live actions";
    $("#dry-run").dataset.dryRun = String(view.dry_run);
    ns.render.breakers($("#breakers tbody"), view, ctx);
  }, 2000);

  const loadMonitor = throttled(async () => {
    const body = await session.api("GET", "/api/v1/accounts/monitor/status");
    ns.render.monitor($("#monitor"), $("#venues tbody"), body.data, state.maxPriceAge);
    const venues = (body.data.feed && body.data.feed.venues) || [];
    venues.forEach((v) => (v.symbols || []).forEach((symbol) => board.ensure(symbol, v.exchange)));
    if (!venues.length) (body.data.symbols || []).forEach((symbol) => board.ensure(symbol, (body.data.exchanges || ["paper"])[0]));
    subscribeTickers();
  }, 2000);

  async function loadPrices() {
    await Promise.all(
      [...board.cards.values()].map(async (card) => {
        try {
          const quote = await session.api("GET", `/api/v1/cache/price/${card.symbol}?exchange=${card.exchange}`);
          if (!card.ticks.length) card.tick(quote);
        } catch (error) {
          console.warn("dashboard: price", card.symbol, error.message);
        }
      }),
    );
  }

  function fillFilter() {
    const select = $("#user-filter");
    if (!select) return;
    Object.entries(state.usernames).forEach(([id, name]) => {
      if (!select.querySelector(`option[value="${id}"]`)) select.append(ns.el("option", { value: id, text: name }));
    });
  }

  async function alertAction(alert, action) {
    try {
      const updated = await session.api("POST", `/api/v1/risk/alerts/${alert.id}/${action}`);
      state.alerts = state.alerts.map((a) => (a.id === updated.id ? { ...updated, fresh: false } : a));
      drawAlerts();
      loadRisk();
    } catch (error) {
      notice(`${action} failed: ${error.message}`);
    }
  }

  // --- live frames -------------------------------------------------------------------------
  let subscribed = new Set();
  function subscribeTickers() {
    const symbols = board.symbols().filter((s) => !subscribed.has(s));
    if (symbols.length && socket.send({ action: "subscribe", channel: "ticker", symbols })) {
      symbols.forEach((s) => subscribed.add(s));
    }
  }
  function subscriptions() {
    subscribed = new Set(board.symbols());
    const alerts = { action: "subscribe", channel: "alerts" };
    if (state.lastAlertId) alerts.since_alert_id = state.lastAlertId;
    const messages = [
      { action: "subscribe", channel: "positions" },
      { action: "subscribe", channel: "accounts" },
      { action: "subscribe", channel: "risk-metrics" },
      alerts,
    ];
    if (subscribed.size) messages.unshift({ action: "subscribe", channel: "ticker", symbols: [...subscribed] });
    return messages;
  }

  function alertFromFrame(data) {
    const at = typeof data.triggered_at === "number" ? new Date(data.triggered_at * 1000).toISOString() : data.triggered_at;
    return {
      id: String(data.id),
      user_id: data.user_id,
      alert_type: data.alert_type || data.type,
      severity: data.severity || "critical",
      message: data.message || data.description || data.condition_name || "",
      triggered_at: at,
      status: data.status || "triggered",
      fresh: true,
    };
  }

  function onFrame(frame) {
    const data = frame.data;
    switch (frame.channel) {
      case "ticker":
        if (frame.type) return;
        board.tick(frame);
        break;
      case "positions":
        if (!data) return;
        flattenPositions(data).forEach((item) => {
          const at = state.positions.findIndex((p) => positionKey(p) === positionKey(item));
          if (at >= 0) state.positions[at] = { ...state.positions[at], ...item };
          else state.positions.push(item);
        });
        drawPositions();
        loadPositions(); // closed positions and officer desks: reconcile from REST
        loadRisk();
        break;
      case "accounts":
      case "risk-metrics":
        if (data) loadRisk();
        break;
      case "alerts":
        if (!data || data.id === undefined) return;
        state.lastAlertId = String(data.id);
        if (!state.alerts.some((a) => a.id === String(data.id))) state.alerts.unshift(alertFromFrame(data));
        drawAlerts();
        loadAlerts();
        loadRisk();
        if ((data.alert_type || data.type) === "circuit_breaker") loadBreakers();
        break;
      default:
        if (frame.type === "error") console.warn("dashboard: socket error frame", frame);
    }
  }

  const socket = new ns.LiveSocket({
    path: config.ws_path,
    session,
    subscriptions,
    onFrame,
    onState: (value) => {
      const node = $("#conn");
      node.dataset.state = value;
      node.textContent = value === "live" ? "live" : value === "offline" ? "reconnecting…" : "connecting";
      if (value === "live") [loadPositions, loadAlerts, loadRisk, loadBreakers, loadMonitor].forEach((load) => load());
    },
  });

  async function start() {
    try {
      const global = await session.api("GET", "/api/v1/config/global");
      state.maxPriceAge = global.data.max_price_age_seconds || 10;
    } catch (error) {
      console.warn("dashboard: config", error.message);
    }
    await Promise.all([loadMonitor(), loadPositions(), loadRisk(), loadAlerts(), loadBreakers()]);
    await loadPrices();
    socket.connect();
    setInterval(() => [loadRisk, loadBreakers, loadMonitor].forEach((load) => load()), 15000);
    setInterval(() => [loadPositions, loadAlerts].forEach((load) => load()), 30000);
  }

  const select = $("#user-filter");
  if (select) {
    select.addEventListener("change", () => {
      state.filter = select.value;
      state.alerts = [];
      [loadPositions, loadRisk, loadAlerts, loadBreakers].forEach((load) => load());
    });
  }
  document.body.dataset.ready = "false";
  start().finally(() => {
    document.body.dataset.ready = "true";
  });
})(window.ETRMS);
