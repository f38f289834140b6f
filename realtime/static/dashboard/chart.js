/* ETRMS dashboard: a card per monitored symbol with its price and a small chart
 * (lightweight-charts): ticks as a line for the first minutes, then one-minute candles. */
"use strict";
window.ETRMS = window.ETRMS || {};

(function (ns) {
  const CANDLES_AFTER_SECONDS = 300; // switch from the tick line to candles once history spans this
  const MAX_TICKS = 3000;

  function themeColors() {
    const style = getComputedStyle(document.documentElement);
    return {
      text: style.getPropertyValue("--fg").trim() || "#333",
      grid: style.getPropertyValue("--grid").trim() || "#eee",
      line: style.getPropertyValue("--accent").trim() || "#2962ff",
    };
  }

  class PriceCard {
    constructor(container, key, symbol, exchange) {
      const { el } = ns;
      this.symbol = symbol;
      this.exchange = exchange;
      this.ticks = [];
      this.candles = new Map();
      this.mode = "line";
      this.priceNode = el("span", { class: "price", text: "—" });
      this.changeNode = el("span", { class: "change muted" });
      this.timeNode = el("time", { class: "muted" });
      this.chartNode = el("div", { class: "chart" });
      this.node = el(
        "div",
        { class: "price-card", dataset: { symbol, exchange, key } },
        el("div", { class: "price-head" }, el("strong", { text: symbol }), el("span", { class: "muted", text: ` ${exchange}` })),
        el("div", {}, this.priceNode, " ", this.changeNode, " ", this.timeNode),
        this.chartNode,
      );
      container.append(this.node);
      this._chart();
    }

    _chart() {
      const LW = window.LightweightCharts;
      if (!LW) return;
      const colors = themeColors();
      this.chart = LW.createChart(this.chartNode, {
        autoSize: true,
        layout: { background: { color: "transparent" }, textColor: colors.text, fontSize: 10, attributionLogo: false },
        grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
        timeScale: { timeVisible: true, secondsVisible: true },
        rightPriceScale: { borderVisible: false },
        handleScroll: false,
        handleScale: false,
      });
      this.series = this.chart.addSeries(LW.LineSeries, { color: colors.line, lineWidth: 2, priceLineVisible: false });
    }

    _toCandles() {
      const LW = window.LightweightCharts;
      this.chart.removeSeries(this.series);
      this.series = this.chart.addSeries(LW.CandlestickSeries, {});
      this.series.setData([...this.candles.values()]);
      this.mode = "candles";
    }

    tick(frame) {
      const value = Number(frame.price);
      if (!Number.isFinite(value)) return;
      const at = frame.timestamp ? Date.parse(frame.timestamp) / 1000 : Date.now() / 1000;
      const second = Math.floor(at);
      const last = this.ticks[this.ticks.length - 1];
      if (last && second < last.time) return; // older than what is drawn: out of order
      this.priceNode.textContent = ns.price(frame.price);
      this.node.dataset.price = String(frame.price);
      if (frame.change_24h !== undefined && frame.change_24h !== null) {
        const change = Number(frame.change_24h);
        this.changeNode.textContent = `${change >= 0 ? "+" : ""}${ns.fmt(change, 2)} %`;
        this.changeNode.className = `change ${change < 0 ? "neg" : "pos"}`;
      }
      this.timeNode.textContent = new Date(at * 1000).toLocaleTimeString([], { hour12: false });
      if (last && last.time === second) last.value = value;
      else this.ticks.push({ time: second, value });
      if (this.ticks.length > MAX_TICKS) this.ticks.splice(0, this.ticks.length - MAX_TICKS);
      const minute = second - (second % 60);
      const candle = this.candles.get(minute);
      if (candle) Object.assign(candle, { high: Math.max(candle.high, value), low: Math.min(candle.low, value), close: value });
      else this.candles.set(minute, { time: minute, open: value, high: value, low: value, close: value });
      this.node.dataset.points = String(this.ticks.length);
      if (!this.series) return;
      if (this.mode === "line" && second - this.ticks[0].time >= CANDLES_AFTER_SECONDS) this._toCandles();
      this.series.update(this.mode === "line" ? { time: second, value } : this.candles.get(minute));
    }
  }

  class PriceBoard {
    constructor(container) {
      this.container = container;
      this.cards = new Map();
    }

    ensure(symbol, exchange) {
      const key = `${exchange}:${symbol}`;
      if (!this.cards.has(key)) this.cards.set(key, new PriceCard(this.container, key, symbol, exchange));
      return this.cards.get(key);
    }

    symbols() {
      return [...new Set([...this.cards.values()].map((card) => card.symbol))];
    }

    tick(frame) {
      const exchange = frame.exchange || "paper";
      const key = `${exchange}:${frame.symbol}`;
      if (this.cards.has(key)) this.cards.get(key).tick(frame);
    }
  }

  ns.PriceBoard = PriceBoard;
})(window.ETRMS);
