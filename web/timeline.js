/*
 * timeline.js - samples over time (/api/timeline) with a brush.
 *
 * Bars per time step on a canvas; one series per side (B in the accent
 * colour, A in blue when comparing versions).  Dragging selects a time
 * range (the brush) for the side being edited: the selection B, or the
 * baseline A when comparing two time ranges.  A click without a drag clears
 * that side's range.  The brush is reported through onBrush(side, from, to)
 * in unix milliseconds (null, null = cleared).
 */
'use strict';

(function (E) {
  const AXIS = 16; /* px under the bars for the time labels */
  const BAND = {
    b: ['rgba(232, 89, 12, 0.16)', 'rgba(232, 89, 12, 0.9)'],
    a: ['rgba(59, 91, 219, 0.16)', 'rgba(59, 91, 219, 0.9)'],
  };

  function two(n) {
    return String(n).padStart(2, '0');
  }

  function timeLabel(ms, span) {
    const d = new Date(ms);
    const hm = two(d.getHours()) + ':' + two(d.getMinutes());
    if (span > 2 * 86400e3) return (d.getMonth() + 1) + '/' + d.getDate() + ' ' + hm;
    if (span < 600e3) return hm + ':' + two(d.getSeconds());
    return hm;
  }

  const TICKS = [60e3, 300e3, 600e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 7 * 86400e3];

  class Timeline {
    constructor(canvas, opts) {
      this.canvas = canvas;
      this.ctx = canvas.getContext('2d');
      this.opts = opts;
      this.series = [];
      this.from = 0;
      this.to = 0;
      this.step = 0;
      this.brushes = { a: null, b: null };
      this.side = 'b';
      this.drag = null;
      this.pending = 0;
      canvas.addEventListener('mousedown', (ev) => this.onDown(ev));
      window.addEventListener('mousemove', (ev) => this.onDragMove(ev));
      window.addEventListener('mouseup', (ev) => this.onUp(ev));
      canvas.addEventListener('mousemove', (ev) => this.onHover(ev));
      canvas.addEventListener('mouseleave', () => E.tooltip.hide());
    }

    /* series: [{label, points: [[t_ms, n], ...], color}] */
    setData(series, from, to, step) {
      this.series = series;
      this.from = from;
      this.to = to > from ? to : from + 1;
      this.step = step || 0;
      this.requestDraw();
    }

    setBrushes(brushes, side) {
      this.brushes = brushes;
      this.side = side || 'b';
      this.requestDraw();
    }

    requestDraw() {
      if (!this.pending) {
        this.pending = requestAnimationFrame(() => {
          this.pending = 0;
          this.draw();
        });
      }
    }

    xOf(t, width) {
      return ((t - this.from) / (this.to - this.from)) * width;
    }

    tOf(px, width) {
      return this.from + (Math.max(0, Math.min(px, width)) / width) * (this.to - this.from);
    }

    draw() {
      const c = this.canvas;
      const width = c.parentElement.clientWidth;
      const height = c.clientHeight || 64;
      const dpr = window.devicePixelRatio || 1;
      if (c.width !== Math.round(width * dpr) || c.height !== Math.round(height * dpr)) {
        c.width = Math.round(width * dpr);
        c.height = Math.round(height * dpr);
        c.style.width = width + 'px';
      }
      const ctx = this.ctx;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, height);
      const plotH = height - AXIS;
      let max = 0;
      for (const s of this.series) for (const p of s.points) if (p[1] > max) max = p[1];
      const stepPx = Math.max(1, this.xOf(this.from + this.step, width) - this.xOf(this.from, width) - 0.5);
      for (const s of this.series) {
        ctx.fillStyle = s.color;
        ctx.beginPath();
        for (const [t, v] of s.points) {
          if (!v) continue;
          const h = Math.max(1, (v / (max || 1)) * (plotH - 4));
          ctx.rect(this.xOf(t, width), plotH - h, stepPx, h);
        }
        ctx.fill();
      }
      /* axes: time below; samples per step on the left (the top line is the largest step) */
      const dark = E.theme && E.theme.dark();
      ctx.fillStyle = dark ? '#4d453d' : '#d8d0c6';
      ctx.fillRect(0, plotH, width, 1);
      this.yLabel = '';
      if (max > 0) {
        ctx.fillRect(0, 4, width, 0.5);
        ctx.fillRect(0, 4 + (plotH - 4) / 2, width, 0.5);
        const per = this.step >= 60e3 ? Math.round(this.step / 60e3) + ' min' : Math.round(this.step / 1e3) + ' s';
        this.yLabel = Number(max).toLocaleString('en-US') + ' samples / ' + per;
        ctx.font = '10px system-ui, sans-serif';
        ctx.textBaseline = 'top';
        ctx.fillStyle = dark ? '#a59b90' : '#6f6860';
        ctx.fillText(this.yLabel, 3, 6);
        ctx.fillText(Number(Math.round(max / 2)).toLocaleString('en-US'), 3, 6 + (plotH - 4) / 2);
      }
      ctx.fillStyle = dark ? '#a59b90' : '#6f6860';
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'top';
      const span = this.to - this.from;
      const tick = TICKS.find((t) => (t / span) * width >= 90) || TICKS[TICKS.length - 1];
      const tz = new Date(this.from).getTimezoneOffset() * 60e3;
      for (let t = Math.ceil((this.from - tz) / tick) * tick + tz; t < this.to; t += tick) {
        const x = this.xOf(t, width);
        ctx.fillRect(x, plotH, 1, 4);
        if (x < width - 40) ctx.fillText(timeLabel(t, span), x + 3, plotH + 3);
      }
      /* brushes: the one being edited on top */
      const order = this.side === 'a' ? ['b', 'a'] : ['a', 'b'];
      for (const side of order) {
        let r = this.brushes[side];
        if (this.drag && this.drag.side === side && this.drag.moved) r = [this.drag.t0, this.drag.t1].sort((p, q) => p - q);
        if (!r) continue;
        const x0 = this.xOf(r[0], width);
        const x1 = this.xOf(r[1], width);
        ctx.fillStyle = BAND[side][0];
        ctx.fillRect(x0, 0, x1 - x0, plotH);
        ctx.fillStyle = BAND[side][1];
        ctx.fillRect(x0, 0, 2, plotH);
        ctx.fillRect(x1 - 2, 0, 2, plotH);
        ctx.font = '600 11px system-ui, sans-serif';
        ctx.fillText(side.toUpperCase(), Math.min(x0 + 5, width - 12), 3);
      }
    }

    offsetX(ev) {
      return ev.clientX - this.canvas.getBoundingClientRect().left;
    }

    onDown(ev) {
      if (ev.button !== 0 || this.to <= this.from) return;
      ev.preventDefault();
      const w = this.canvas.clientWidth;
      const t = this.tOf(this.offsetX(ev), w);
      this.drag = { side: this.side, x0: this.offsetX(ev), t0: t, t1: t, moved: false };
    }

    onDragMove(ev) {
      if (!this.drag) return;
      const x = this.offsetX(ev);
      this.drag.t1 = this.tOf(x, this.canvas.clientWidth);
      if (Math.abs(x - this.drag.x0) >= 4) this.drag.moved = true;
      this.requestDraw();
    }

    onUp(ev) {
      const d = this.drag;
      if (!d) return;
      this.drag = null;
      if (!d.moved) {
        this.opts.onBrush(d.side, null, null);
        return;
      }
      const from = Math.min(d.t0, d.t1);
      const to = Math.max(d.t0, d.t1);
      this.opts.onBrush(d.side, Math.floor(from), Math.ceil(to));
    }

    onHover(ev) {
      if (this.drag || !this.series.length || !this.step) return;
      const t = this.tOf(this.offsetX(ev), this.canvas.clientWidth);
      const bucket = Math.floor(t / this.step) * this.step;
      const lines = [['name', timeLabel(bucket, this.to - this.from)]];
      for (const s of this.series) {
        const p = s.points.find((q) => q[0] <= t && t < q[0] + this.step);
        lines.push(['', s.label + ': ' + (p ? p[1] : 0).toLocaleString('en-US') + ' samples']);
      }
      lines.push(['loc', 'Drag to pick a time range; click to clear it.']);
      E.tooltip.show(lines, ev);
    }
  }

  E.Timeline = Timeline;
  E.timeLabel = timeLabel;
})(window.Ember = window.Ember || {});
