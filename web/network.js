/*
 * network.js - the Network tab: TCP traffic of the selected service.
 *
 * A tab of its own, like reports.js: choosing it hides the profile views
 * and shows, for the service, version and time window of the pickers
 * (app.js), what GET api/net and api/topology answer:
 *
 *   - three small charts over time: bytes sent and received, retransmitted
 *     segments (with resets and drops), RTT p50 and p99.  Dragging across
 *     any of them selects that window and opens the flame graph of it, so
 *     "what was the CPU doing while retransmits spiked" is one gesture;
 *   - the peer table, sortable by any column (click its head);
 *   - a topology drawing: who calls the service on the left, what it calls
 *     on the right, line widths by bytes.
 *
 * Canvas drawing, no library.  Shown and hidden like the other side tabs
 * (sidetab.js); a picker change reloads it.
 */
'use strict';

(function (E) {
  const $ = (id) => document.getElementById(id);
  const tab = $('tab-network');
  const view = $('view-network');
  if (!tab || !view) return;

  const COLORS = { sent: '#e8590c', recv: '#3b5bdb', retrans: '#c92a2a', resets: '#862e9c',
    drops: '#5c940d', p50: '#1098ad', p99: '#f08c00' };
  const fmt = (n) => Number(n).toLocaleString('en-US');
  let data = null;   /* the last api/net answer */
  let topo = null;   /* the last api/topology answer */
  let sortKey = 'bytes';
  let sortDesc = true;
  let charts = [];

  function bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = Number(n);
    while (v >= 1024 && i < u.length - 1) {
      v /= 1024;
      i++;
    }
    return (i ? v.toFixed(1) : String(v)) + ' ' + u[i];
  }

  function ms(v) {
    return v === null || v === undefined ? '' : v < 10 ? v.toFixed(2) + ' ms' : v.toFixed(1) + ' ms';
  }

  function setStatus(text, isError) {
    const s = $('status');
    if (!s) return;
    s.textContent = text;
    s.classList.toggle('error', !!isError);
  }

  /* The selection of the pickers: service, version, window (not the Requests tab's endpoint). */
  function selection() {
    const s = E.app && E.app.selection ? E.app.selection() : {};
    return { service: s.service || '', version: s.version || '', from: s.from || 0, to: s.to || 0 };
  }

  function peerName(p) {
    if (p.service) return p.service;
    if (p.direction === 'in') return p.addr;
    return (p.addr.includes(':') ? '[' + p.addr + ']' : p.addr) + ':' + p.port;
  }

  /* ---- charts ---- */

  /*
   * A small time chart.  series: [{label, color, values: [..]|null, bars}],
   * aligned on data.timeline.t; drag selects a window (onBrush).
   */
  class Chart {
    constructor(canvas, title, unit) {
      this.canvas = canvas;
      this.title = title;
      this.unit = unit;
      this.series = [];
      this.drag = null;
      canvas.addEventListener('mousedown', (ev) => {
        if (ev.button !== 0 || !this.t) return;
        ev.preventDefault();
        this.drag = { x0: this.x(ev), x1: this.x(ev) };
      });
      window.addEventListener('mousemove', (ev) => {
        if (!this.drag) return;
        this.drag.x1 = this.x(ev);
        this.draw();
      });
      window.addEventListener('mouseup', () => {
        const d = this.drag;
        if (!d) return;
        this.drag = null;
        this.draw();
        if (Math.abs(d.x1 - d.x0) < 4) return;
        const w = this.canvas.clientWidth;
        const a = this.tOf(Math.min(d.x0, d.x1), w);
        const b = this.tOf(Math.max(d.x0, d.x1), w);
        openFlame(Math.floor(a), Math.ceil(b));
      });
      canvas.addEventListener('mousemove', (ev) => this.hover(ev));
      canvas.addEventListener('mouseleave', () => E.tooltip.hide());
    }

    x(ev) {
      return ev.clientX - this.canvas.getBoundingClientRect().left;
    }

    tOf(px, w) {
      return this.from + (Math.max(0, Math.min(px, w)) / w) * (this.to - this.from);
    }

    set(from, to, step, t, series) {
      this.from = from;
      this.to = to > from ? to : from + 1;
      this.step = step;
      this.t = t;
      this.series = series;
      this.draw();
    }

    draw() {
      const c = this.canvas;
      const w = c.parentElement.clientWidth;
      const h = c.clientHeight || 90;
      const dpr = window.devicePixelRatio || 1;
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      c.style.width = w + 'px';
      const ctx = c.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      const top = 16;
      const plotH = h - top - 4;
      let max = 0;
      for (const s of this.series) for (const v of s.values || []) if (v !== null && v > max) max = v;
      const xOf = (t) => ((t - this.from) / (this.to - this.from)) * w;
      const stepPx = Math.max(1, xOf(this.from + this.step) - xOf(this.from) - 0.5);
      for (const s of this.series) {
        if (!s.values) continue;
        ctx.fillStyle = s.color;
        ctx.strokeStyle = s.color;
        ctx.lineWidth = 1.5;
        if (s.bars) {
          ctx.beginPath();
          this.t.forEach((t, i) => {
            const v = s.values[i];
            if (!v) return;
            const bh = Math.max(1, (v / (max || 1)) * (plotH - 2));
            ctx.rect(xOf(t), top + plotH - bh, stepPx, bh);
          });
          ctx.fill();
        } else {
          ctx.beginPath();
          let pen = false;
          this.t.forEach((t, i) => {
            const v = s.values[i];
            if (v === null || v === undefined) {
              pen = false;
              return;
            }
            const y = top + plotH - (v / (max || 1)) * (plotH - 2);
            const x = xOf(t) + stepPx / 2;
            if (pen) ctx.lineTo(x, y);
            else ctx.moveTo(x, y);
            pen = true;
          });
          ctx.stroke();
        }
      }
      ctx.fillStyle = '#6f6860';
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'top';
      const title = this.title + (max ? '  (max ' + this.unit(max) + ')' : '  (none)');
      ctx.fillText(title, 4, 2);
      /* a key in the series' colours */
      let kx = 16 + ctx.measureText(title).width;
      for (const s of this.series) {
        if (!s.values) continue;
        ctx.fillStyle = s.color;
        ctx.fillRect(kx, 5, 10, 3);
        ctx.fillText(s.label, kx + 13, 2);
        kx += 24 + ctx.measureText(s.label).width;
      }
      ctx.fillStyle = '#6f6860';
      ctx.fillStyle = '#d8d0c6';
      ctx.fillRect(0, h - 1, w, 1);
      if (this.drag) {
        const x0 = Math.min(this.drag.x0, this.drag.x1);
        ctx.fillStyle = 'rgba(232, 89, 12, 0.18)';
        ctx.fillRect(x0, 0, Math.abs(this.drag.x1 - this.drag.x0), h);
      }
    }

    hover(ev) {
      if (this.drag || !this.t || !this.t.length) return;
      const t = this.tOf(this.x(ev), this.canvas.clientWidth);
      const i = this.t.findIndex((q) => q <= t && t < q + this.step);
      const lines = [['name', E.timeLabel(i >= 0 ? this.t[i] : t, this.to - this.from)]];
      for (const s of this.series) {
        if (!s.values) continue;
        const v = i >= 0 ? s.values[i] : null;
        lines.push(['', s.label + ': ' + (v === null || v === undefined ? '\u2013' : this.unit(v))]);
      }
      lines.push(['loc', 'Drag across a spike to see the CPU profile of that window.']);
      E.tooltip.show(lines, ev);
    }
  }

  /* The flame graph of [from, to) for the same service and version. */
  function openFlame(from, to) {
    const p = new URLSearchParams(location.hash.slice(1));
    p.set('from', String(from));
    p.set('to', String(to));
    p.delete('view');
    p.delete('z');
    side.hide();
    location.hash = '#' + p.toString();
  }

  function drawCharts() {
    if (!data) return;
    const tl = data.timeline;
    const sel = selection();
    const from = sel.from || (tl.t.length ? tl.t[0] : Date.now() - 3600e3);
    const to = sel.to || Date.now();
    const step = data.step_ms || 10000;
    const perSec = (arr) => arr.map((v) => v / (step / 1000));
    charts[0].set(from, to, step, tl.t, [
      { label: 'sent', color: COLORS.sent, values: perSec(tl.sent_bytes) },
      { label: 'received', color: COLORS.recv, values: perSec(tl.received_bytes) },
    ]);
    charts[1].set(from, to, step, tl.t, [
      { label: 'retransmits', color: COLORS.retrans, values: tl.retransmits, bars: true },
      { label: 'resets', color: COLORS.resets, values: tl.resets },
      { label: 'drops', color: COLORS.drops, values: tl.drops },
    ]);
    charts[2].set(from, to, step, tl.t, [
      { label: 'RTT p50', color: COLORS.p50, values: tl.rtt_p50_ms },
      { label: 'RTT p99', color: COLORS.p99, values: tl.rtt_p99_ms },
    ]);
  }

  /* ---- peer table ---- */

  const COLUMNS = [
    ['peer', 'Peer', (p) => peerName(p), (p) => peerName(p)],
    ['direction', 'Direction', (p) => (p.direction === 'in' ? 'in (:' + p.port + ')' : 'out'), (p) => p.direction],
    ['bytes', 'Bytes', (p) => bytes(p.sent_bytes + p.received_bytes), (p) => p.sent_bytes + p.received_bytes],
    ['sent', 'Sent', (p) => bytes(p.sent_bytes), (p) => p.sent_bytes],
    ['received', 'Received', (p) => bytes(p.received_bytes), (p) => p.received_bytes],
    ['conns', 'Connections', (p) => fmt(p.connects + p.accepts), (p) => p.connects + p.accepts],
    ['failures', 'Failed', (p) => fmt(p.connect_failures), (p) => p.connect_failures],
    ['resets', 'Resets', (p) => fmt(p.resets_sent + p.resets_received), (p) => p.resets_sent + p.resets_received],
    ['retrans', 'Retransmits', (p) => fmt(p.retransmits), (p) => p.retransmits],
    ['drops', 'Drops', (p) => fmt(p.drops), (p) => p.drops],
    ['p50', 'RTT p50', (p) => ms(p.rtt_p50_ms), (p) => p.rtt_p50_ms || 0],
    ['p99', 'RTT p99', (p) => ms(p.rtt_p99_ms), (p) => p.rtt_p99_ms || 0],
    ['connect', 'Connect p50', (p) => ms(p.connect_p50_ms), (p) => p.connect_p50_ms || 0],
  ];

  function renderTable() {
    const table = $('net-peers');
    table.replaceChildren();
    if (!data) return;
    const col = COLUMNS.find((c) => c[0] === sortKey) || COLUMNS[2];
    const rows = data.peers.slice().sort((a, b) => {
      const x = col[3](a);
      const y = col[3](b);
      const c = typeof x === 'string' ? x.localeCompare(y) : x - y;
      return sortDesc ? -c : c;
    });
    const thead = document.createElement('thead');
    const hr = document.createElement('tr');
    for (const [key, label] of COLUMNS) {
      const th = document.createElement('th');
      if (key !== 'peer' && key !== 'direction') th.className = 'num';
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'sort' + (key === sortKey ? ' active' : '');
      b.textContent = label + (key === sortKey ? (sortDesc ? ' \u25be' : ' \u25b4') : '');
      b.addEventListener('click', () => {
        if (sortKey === key) sortDesc = !sortDesc;
        else {
          sortKey = key;
          sortDesc = key !== 'peer' && key !== 'direction';
        }
        renderTable();
      });
      th.appendChild(b);
      hr.appendChild(th);
    }
    thead.appendChild(hr);
    const tbody = document.createElement('tbody');
    for (const p of rows) {
      const tr = document.createElement('tr');
      COLUMNS.forEach(([key, , show], i) => {
        const td = document.createElement('td');
        td.textContent = show(p);
        if (i > 1) td.className = 'num';
        if (key === 'peer') {
          td.className = 'fn';
          td.title = p.addr + (p.direction === 'out' ? ':' + p.port : ' to port ' + p.port) +
            (Object.keys(p.drop_reasons).length ? '  drops: ' + JSON.stringify(p.drop_reasons) : '');
        }
        if (key === 'retrans' && p.retransmits) td.classList.add('diff', 'more');
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    }
    table.append(thead, tbody);
    $('net-empty').hidden = rows.length > 0;
  }

  /* ---- topology ---- */

  function drawTopology() {
    const c = $('net-topo');
    const w = c.parentElement.clientWidth;
    const svc = selection().service;
    const edges = topo ? topo.edges : [];
    const callers = [];
    const callees = [];
    for (const e of edges) {
      if (e.to === svc && e.from !== svc && !callers.some((x) => x.name === e.from)) callers.push({ name: e.from, e });
      else if (e.from === svc && e.to !== svc && !callees.some((x) => x.name === e.to)) callees.push({ name: e.to, e });
    }
    const kind = new Map((topo ? topo.nodes : []).map((n) => [n.id, n.kind]));
    const rowH = 26;
    const h = Math.max(80, 20 + rowH * Math.max(callers.length, callees.length, 1));
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    c.style.width = w + 'px';
    c.style.height = h + 'px';
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const maxBytes = Math.max(1, ...edges.map((e) => e.sent_bytes + e.received_bytes));
    const cx = w / 2;
    const cy = h / 2;
    const box = (x, y, text, k) => {
      const tw = Math.min(220, ctx.measureText(text).width + 16);
      ctx.fillStyle = k === 'service' ? '#fff4e6' : '#f1f3f5';
      ctx.strokeStyle = k === 'service' ? '#e8590c' : '#adb5bd';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.rect(x - tw / 2, y - 10, tw, 20);
      ctx.fill();
      ctx.stroke();
      ctx.fillStyle = '#24211e';
      ctx.textAlign = 'center';
      ctx.fillText(text, x, y, 210);
    };
    const link = (x0, x1, y0, y1, e) => {
      ctx.strokeStyle = e.retransmits ? 'rgba(201, 42, 42, 0.6)' : 'rgba(59, 91, 219, 0.45)';
      ctx.lineWidth = 1 + 7 * Math.sqrt((e.sent_bytes + e.received_bytes) / maxBytes);
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      ctx.bezierCurveTo((x0 + x1) / 2, y0, (x0 + x1) / 2, y1, x1, y1);
      ctx.stroke();
    };
    const place = (list, x) => list.forEach((n, i) => {
      n.x = x;
      n.y = h / 2 + (i - (list.length - 1) / 2) * rowH;
    });
    place(callers, w * 0.16);
    place(callees, w * 0.84);
    for (const n of callers) link(n.x + 60, cx - 60, n.y, cy, n.e);
    for (const n of callees) link(cx + 60, n.x - 60, cy, n.y, n.e);
    for (const n of callers) box(n.x, n.y, n.name, kind.get(n.name));
    for (const n of callees) box(n.x, n.y, n.name, kind.get(n.name));
    if (svc) box(cx, cy, svc, 'service');
    view.dataset.callers = String(callers.length);
    view.dataset.callees = String(callees.length);
  }

  /* ---- loading ---- */

  async function load() {
    const sel = selection();
    const tick = E.api.latest('network');
    try {
      const p = E.api.addSelection(new URLSearchParams(), sel, '');
      const width = Math.max(200, view.clientWidth || 800);
      const span = (sel.to || Date.now()) - (sel.from || Date.now() - 86400e3);
      p.set('step', String(Math.max(10, Math.ceil(span / 1000 / (width / 4)))));
      p.set('limit', '500');
      const tp = E.api.addSelection(new URLSearchParams(), { service: sel.service, from: sel.from, to: sel.to }, '');
      const [net, top] = await Promise.all([
        fetch('api/net?' + p.toString(), { cache: 'no-store' }).then(json),
        fetch('api/topology?' + tp.toString(), { cache: 'no-store' }).then(json),
      ]);
      if (!tick() || !side.shown()) return;
      data = net;
      topo = top;
      drawCharts();
      renderTable();
      drawTopology();
      const t = data.total;
      setStatus((sel.service || 'all services') + ' \u00b7 ' + fmt(data.peers_total) + ' peers \u00b7 sent ' +
        bytes(t.sent_bytes) + ', received ' + bytes(t.received_bytes) + ' \u00b7 ' + fmt(t.retransmits) +
        ' retransmits' + (t.rtt_p50_ms !== null ? ' \u00b7 RTT p50 ' + ms(t.rtt_p50_ms) : ''));
      view.dataset.loaded = '1';
    } catch (e) {
      setStatus('Error: ' + e.message, true);
    }
  }

  async function json(resp) {
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error((body && body.error) || 'HTTP ' + resp.status);
    return body;
  }

  /* Shown (sidetab.js): the charts made once, then the data of the pickers' selection. */
  function open() {
    view.dataset.loaded = '';
    if (!charts.length) {
      charts = [
        new Chart($('net-bytes'), 'Bytes per second', (v) => bytes(Math.round(v)) + '/s'),
        new Chart($('net-errors'), 'Errors per step', (v) => fmt(v)),
        new Chart($('net-rtt'), 'Smoothed RTT', (v) => ms(v)),
      ];
    }
    load();
  }

  const side = E.sideTab({
    tab, view, load: open, pickers: true,
    hint: 'TCP traffic of the service by peer (in: clients connecting to it; ' +
      'out: what it calls). Drag across a chart to open the flame graph of that window; click a column to sort.',
  });
  window.addEventListener('resize', () => {
    if (!side.shown()) return;
    for (const c of charts) c.draw();
    drawTopology();
  });
  E.network = { show: side.show, hide: side.hide, load, charts: () => charts };
})(window.Ember = window.Ember || {});
