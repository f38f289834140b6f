/* ETRMS dashboard: the session's access token, REST calls with it, and the WebSocket of
 * SPEC §7 that reconnects by itself and resubscribes (alerts with since_alert_id). */
"use strict";
window.ETRMS = window.ETRMS || {};

(function (ns) {
  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.message || body.detail)) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  /* A short-lived access token from the session endpoint, renewed at 80 % of its life. */
  class Session {
    constructor(tokenUrl) {
      this.tokenUrl = tokenUrl;
      this.access = null;
      this.expiresAt = 0;
      this.pending = null;
      this.timer = null;
      this.listeners = [];
    }

    onRenew(listener) {
      this.listeners.push(listener);
    }

    async token() {
      if (!this.access || Date.now() / 1000 > this.expiresAt - 20) await this.renew();
      return this.access;
    }

    renew() {
      if (!this.pending) {
        this.pending = this._fetch().finally(() => {
          this.pending = null;
        });
      }
      return this.pending;
    }

    async _fetch() {
      const response = await fetch(this.tokenUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
      if (response.status === 401 || response.status === 403) {
        window.location.assign("/login/?next=/");
        throw new ApiError(response.status, null);
      }
      if (!response.ok) throw new ApiError(response.status, null);
      const body = await response.json();
      this.access = body.access;
      this.expiresAt = body.expires_at;
      clearTimeout(this.timer);
      const delay = Math.max(5, body.lifetime_seconds * 0.8) * 1000;
      this.timer = setTimeout(() => this.renew().catch(() => null), delay);
      this.listeners.forEach((listener) => listener(body));
      return body;
    }

    /* A REST call with the bearer token (no cookie, so no CSRF); one retry on 401. */
    async api(method, path, body, retried) {
      const token = await this.token();
      const options = { method, headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } };
      if (body !== undefined) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(body);
      }
      options.credentials = "omit";
      const response = await fetch(path, options);
      if (response.status === 401 && !retried) {
        await this.renew();
        return this.api(method, path, body, true);
      }
      const text = await response.text();
      const parsed = text ? JSON.parse(text) : null;
      if (!response.ok) throw new ApiError(response.status, parsed);
      return parsed;
    }
  }

  /* The multiplexed socket /api/v1/ws?token=...: subscriptions come from `subscriptions()`
   * at every (re)connect, so a restart of the server loses nothing the page wants. */
  class LiveSocket {
    constructor({ path, session, subscriptions, onFrame, onState }) {
      this.path = path;
      this.session = session;
      this.subscriptions = subscriptions;
      this.onFrame = onFrame;
      this.onState = onState;
      this.ws = null;
      this.attempt = 0;
      this.pingTimer = null;
      this.stopped = false;
    }

    url(token) {
      const scheme = window.location.protocol === "https:" ? "wss" : "ws";
      return `${scheme}://${window.location.host}${this.path}?token=${encodeURIComponent(token)}`;
    }

    async connect() {
      this.onState("connecting");
      let token;
      try {
        token = await this.session.token();
      } catch (error) {
        this._retry();
        return;
      }
      const ws = new WebSocket(this.url(token));
      this.ws = ws;
      ws.onopen = () => {
        this.attempt = 0;
        this.onState("live");
        this.subscriptions().forEach((message) => this.send(message));
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.send({ action: "ping" }), 20000);
      };
      ws.onmessage = (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        this.onFrame(frame);
      };
      ws.onclose = (event) => {
        clearInterval(this.pingTimer);
        if (this.ws !== ws) return;
        this.ws = null;
        this.onState("offline");
        if (event.code === 4401) this.session.access = null; // expired token: fetch a new one first
        this._retry();
      };
    }

    _retry() {
      if (this.stopped) return;
      this.attempt += 1;
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5)) * (0.8 + Math.random() * 0.4);
      setTimeout(() => this.connect(), delay);
    }

    send(message) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify(message));
        return true;
      }
      return false;
    }

    /* A new token is used at the next connect; an open socket keeps its own until the
     * server closes it with 4401 at expiry, and then reconnects with the new one. */
    get open() {
      return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
    }
  }

  ns.ApiError = ApiError;
  ns.Session = Session;
  ns.LiveSocket = LiveSocket;
})(window.ETRMS);
