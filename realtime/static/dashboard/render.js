/* ETRMS dashboard: rendering of each panel from plain data (no fetching here). */
"use strict";
window.ETRMS = window.ETRMS || {};

(function (ns) {
  const numberFormats = {};
  function fmt(value, digits = 2) {
    if (value === null || value === undefined || value === "") return "—";
    const n = Number(value);
    if (!Number.isFinite(n)) return String(value);
    const key = String(digits);
    numberFormats[key] = numberFormats[key] || new Intl.NumberFormat("en-US", { maximumFractionDigits: digits });
    return numberFormats[key].format(n);
  }
  function price(value) {
    const n = Math.abs(Number(value));
    return fmt(value, n >= 1000 ? 2 : n >= 1 ? 4 : 6);
  }
  function time(iso) {
    if (!iso) return "—";
    const date = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
    return date.toLocaleTimeString([], { hour12: false });
  }
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs).forEach(([key, value]) => {
      if (value === null || value === undefined || value === false) return;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    });
    children.flat(Infinity).forEach((child) => {
      if (child !== null && child !== undefined) node.append(child);
    });
    return node;
  }
  function adminLink(config, path, text) {
    return config.admin_url ? el("a", { href: `${config.admin_url}${path}`, text }) : document.createTextNode(text);
  }

  const LABELS = {
    position_size: "position size",
    total_exposure: "exposure",
    daily_loss: "daily loss",
    margin_ratio: "margin ratio",
    leverage: "leverage",
    drawdown: "drawdown %",
  };

  /* A utilisation bar: filled to u (capped at 100 %), coloured by risk level, the warning
   * level marked. */
  function bar(status, config) {
    const u = status.utilization;
    const width = u === null ? 100 : Math.min(100, Math.max(0, u * 100));
    const warning = (status.warning_ratio !== null ? Math.max(0.5, status.warning_ratio) : 0.8) * 100;
    const source = status.source === "config" ? `desk cap ${status.cap}` : "limit";
    const scope = status.symbol ? ` ${status.symbol}` : status.exchange ? ` ${status.exchange}` : "";
    const used = u === null ? "undefined" : `${fmt(u * 100, 1)} %`;
    const path = status.limit_id
      ? `risk/risklimit/${status.limit_id}/change/`
      : status.cap && status.symbol
        ? "risk/symbolconfig/"
        : status.exchange
          ? "risk/exchangeconfig/"
          : "risk/globalconfig/";
    const label = `${LABELS[status.limit_type] || status.limit_type}${scope}: ${fmt(status.current_value)} / ${fmt(status.threshold)}`;
    return el(
      "div",
      { class: "bar", dataset: { level: status.risk_level, key: status.key }, title: `${label} (${source})` },
      el("div", { class: "track" }, el("span", { class: "fill", style: `width:${width}%` }), el("span", { class: "warn", style: `left:${warning}%` })),
      el("div", { class: "bar-label" }, adminLink(config, path, label), el("span", { class: "muted", text: ` ${source} · ${used}` })),
      status.ladder && status.ladder.length ? ladder(status.ladder) : null,
    );
  }

  /* A limit's graded ladder: each step at its share of the threshold, latched ones marked. */
  function ladder(steps) {
    return el(
      "div",
      { class: "ladder" },
      ...steps.map((step) =>
        el("span", {
          class: `step${step.latched ? " latched" : ""}`,
          dataset: { at: step.at_pct, latched: step.latched ? "true" : "false" },
          title: step.latched
            ? `latched since ${time(step.triggered_at)}: ${step.action_status}${step.dry_run ? " (dry run)" : ""}`
            : `at ${fmt(step.level)}`,
          text: `${fmt(step.at_pct, 0)} % ${step.do}${step.latched ? " · latched" : ""}`,
        }),
      ),
    );
  }

  function liquidationDistance(position) {
    const mark = Number(position.mark_price);
    const liq = Number(position.liquidation_price);
    if (!position.liquidation_price || !mark) return "—";
    return `${fmt((Math.abs(mark - liq) / mark) * 100, 1)} %`;
  }

  function renderPositions(tbody, positions, statuses, ctx) {
    tbody.replaceChildren(
      ...positions.map((p) => {
        const user = p.user_id || ctx.config.user_id;
        const limits = statuses.filter((s) => s.limit_type === "position_size" && s.symbol === p.symbol && s.user_id === user);
        const pnl = Number(p.unrealized_pnl);
        return el(
          "tr",
          { dataset: { symbol: p.symbol, exchange: p.exchange, side: p.side, user: user } },
          ctx.config.officer ? el("td", {}, adminLink(ctx.config, `accounts/user/${user}/change/`, ctx.usernames[user] || user.slice(0, 8))) : null,
          el("td", { text: p.exchange }),
          el("td", {}, adminLink(ctx.config, `accounts/position/${p.id}/change/`, p.symbol)),
          el("td", { class: `side ${p.side}`, text: p.side }),
          el("td", { class: "num", text: fmt(p.size, 6) }),
          el("td", { class: "num", text: price(p.entry_price) }),
          el("td", { class: "num mark", text: price(p.mark_price) }),
          el("td", { class: "num", text: fmt(p.notional) }),
          el("td", { class: `num pnl ${pnl < 0 ? "neg" : "pos"}`, text: fmt(p.unrealized_pnl) }),
          el("td", { class: "num", text: liquidationDistance(p) }),
          el("td", { class: "limits" }, limits.map((s) => bar(s, ctx.config))),
        );
      }),
    );
    if (!positions.length) tbody.append(el("tr", {}, el("td", { colspan: 11, class: "muted", text: "No open positions." })));
  }

  const METRICS = [
    ["total_exposure", "Exposure", 2],
    ["leverage", "Leverage", 2],
    ["drawdown", "Drawdown %", 2],
    ["daily_pnl", "Daily PnL", 2],
    ["margin_ratio", "Margin ratio", 4],
  ];

  function renderMetrics(container, view, ctx) {
    const blocks = view.users.map((user) => {
      const bars = user.statuses.filter((s) => s.limit_type !== "position_size" || s.source === "config");
      return el(
        "div",
        { class: "user-risk", dataset: { user: user.user_id } },
        el("h3", {}, ctx.config.officer ? adminLink(ctx.config, `accounts/user/${user.user_id}/change/`, user.username) : "Your book",
          el("span", { class: "level", dataset: { level: user.risk_level }, text: user.risk_level })),
        el("dl", { class: "metrics" }, METRICS.map(([key, label, digits]) => el("div", {}, el("dt", { text: label }), el("dd", { dataset: { metric: key }, text: fmt(user.metrics[key], digits) })))),
        bars.length ? el("div", { class: "bars" }, bars.map((s) => bar(s, ctx.config))) : el("p", { class: "muted", text: "No limit applies." }),
      );
    });
    if (view.truncated) blocks.push(el("p", { class: "muted", text: "More users than shown: pick one in the filter." }));
    container.replaceChildren(...blocks);
  }

  function renderAlerts(list, alerts, ctx) {
    list.replaceChildren(
      ...alerts.map((alert) => {
        const open = alert.status === "triggered";
        return el(
          "li",
          { class: `alert ${alert.fresh ? "fresh" : ""}`, dataset: { id: alert.id, severity: alert.severity, status: alert.status } },
          el("div", { class: "alert-head" },
            el("span", { class: "sev", text: alert.severity }),
            el("span", { class: "alert-type", text: alert.alert_type }),
            el("span", { class: "status", text: alert.status }),
            el("time", { text: time(alert.triggered_at) })),
          el("div", { class: "alert-msg" }, adminLink(ctx.config, `risk/riskalert/${alert.id}/change/`, alert.message || alert.description || "")),
          el("div", { class: "alert-actions" },
            open ? el("button", { class: "ack", type: "button", text: "Acknowledge", onclick: () => ctx.onAlert(alert, "acknowledge") }) : null,
            alert.status !== "resolved" ? el("button", { class: "resolve", type: "button", text: "Resolve", onclick: () => ctx.onAlert(alert, "resolve") }) : null),
        );
      }),
    );
    if (!alerts.length) list.append(el("li", { class: "muted", text: "No alerts." }));
  }

  function renderBreakers(tbody, view, ctx) {
    tbody.replaceChildren(
      ...view.breakers.map((b) => {
        const trip = b.last_trip;
        return el(
          "tr",
          { dataset: { name: b.name, state: b.state } },
          el("td", {}, adminLink(ctx.config, `risk/circuitbreaker/${b.id}/change/`, b.name), el("div", { class: "muted", text: `${b.condition_type} ≥ ${fmt(b.threshold)}` })),
          el("td", {}, el("span", { class: `state ${b.state}`, text: b.latched > 1 ? `${b.state} ×${b.latched}` : b.state })),
          el("td", { text: b.action }),
          el("td", { text: trip ? `${time(trip.triggered_at)} ${trip.symbol} ${trip.exchange}${trip.dry_run ? " (dry run)" : ""}` : "—" }),
          el("td", { class: `result ${trip ? trip.action_status : ""}`, text: trip ? `${trip.action_status}: ${trip.action_result || ""}` : "" }),
        );
      }),
    );
  }

  function renderMonitor(container, tbody, status, maxAge) {
    const feed = status.feed || {};
    const now = Date.now();
    const venues = feed.venues || [];
    const stale = venues.filter((v) => v.state !== "connected" || !v.last_tick_at || now - Date.parse(v.last_tick_at) > maxAge * 1000);
    container.replaceChildren(
      el("p", {},
        el("span", { class: `state ${status.running ? "armed" : "latched"}`, text: status.running ? "monitoring" : "monitoring stopped" }), " ",
        el("span", { class: `state ${feed.alive ? "armed" : "latched"}`, text: feed.alive ? "feed alive" : "feed down" }),
        stale.length ? el("span", { class: "stale", text: ` stale: ${stale.map((v) => v.exchange).join(", ")}` }) : null),
      el("p", { class: "muted", text: `last sync ${time(status.last_sync)} · every ${status.interval || "—"} s${status.last_error ? ` · last error: ${status.last_error}` : ""}` }),
    );
    tbody.replaceChildren(
      ...venues.map((v) =>
        el("tr", { class: stale.includes(v) ? "stale" : "", dataset: { exchange: v.exchange } },
          el("td", { text: v.exchange }), el("td", { text: v.state }),
          el("td", { class: "num", text: fmt(v.ticks_per_second, 1) }), el("td", { text: time(v.last_tick_at) }))),
    );
  }

  ns.fmt = fmt;
  ns.price = price;
  ns.el = el;
  ns.render = { positions: renderPositions, metrics: renderMetrics, alerts: renderAlerts, breakers: renderBreakers, monitor: renderMonitor };
})(window.ETRMS);
