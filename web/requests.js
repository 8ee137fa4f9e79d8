/*
 * requests.js - the Requests tab: L7 requests of the selected service.
 *
 * A tab of its own next to the views of app.js, like reports.js: choosing
 * it hides the views and shows, for the service and time window of the
 * pickers (or the range brushed on the timeline):
 *   - its endpoints (the requests it serves): rate, error %, p50, p99 and
 *     a sparkline of the rate, from GET api/spans?role=server; clicking an
 *     endpoint opens the flame graph of that endpoint over the same window
 *     (CPU samples of the threads while they served it);
 *   - its database and outgoing calls (role=client): statement or command,
 *     calls, average, p99, errors and slow calls;
 *   - its slowest requests, with their full text (api/spans/slow).
 * Shown and hidden like the other side tabs (sidetab.js); a picker change
 * reloads it.
 */
'use strict';

(function (E) {
  const $ = (id) => document.getElementById(id);
  const tab = $('tab-requests');
  const view = $('view-requests');
  if (!tab || !view) return;

  const SVG = 'http://www.w3.org/2000/svg';
  let seq = 0;

  const fmt = (n) => Number(n).toLocaleString('en-US');
  function ms(v) {
    if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
    if (v >= 10) return v.toFixed(0) + ' ms';
    if (v >= 1) return v.toFixed(1) + ' ms';
    return (v * 1000).toFixed(0) + ' \u00b5s';
  }
  function rate(r) {
    if (r === null || r === undefined) return '\u2013';
    return r >= 10 ? r.toFixed(0) + '/s' : r >= 0.1 ? r.toFixed(2) + '/s' : (r * 60).toFixed(1) + '/min';
  }

  function cell(tr, content, cls, title) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    if (title) td.title = title;
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content;
    tr.appendChild(td);
    return td;
  }

  function head(table, names) {
    const tr = document.createElement('tr');
    for (const [name, cls] of names) {
      const th = document.createElement('th');
      th.textContent = name;
      if (cls) th.className = cls;
      tr.appendChild(th);
    }
    const thead = document.createElement('thead');
    thead.appendChild(tr);
    table.replaceChildren(thead);
    const tbody = document.createElement('tbody');
    table.appendChild(tbody);
    return tbody;
  }

  /* A small line of counts per step, errors in red underneath. */
  function sparkline(series, errors) {
    const w = 120;
    const h = 22;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('width', w);
    svg.setAttribute('height', h);
    svg.setAttribute('class', 'spark');
    const max = Math.max(1, ...series);
    const line = (vals, cls) => {
      if (!vals || vals.length < 1) return;
      const dx = vals.length > 1 ? w / (vals.length - 1) : 0;
      const pts = vals.map((v, i) => (i * dx).toFixed(1) + ',' + (h - 1 - (v / max) * (h - 3)).toFixed(1));
      if (pts.length === 1) pts.push(w + ',' + pts[0].split(',')[1]);
      const p = document.createElementNS(SVG, 'polyline');
      p.setAttribute('points', pts.join(' '));
      p.setAttribute('class', cls);
      svg.appendChild(p);
    };
    line(series, 'spark-rate');
    if (errors && errors.some((v) => v > 0)) line(errors, 'spark-err');
    return svg;
  }

  /* The service and window of the pickers and brushes (app.js). */
  function selection() {
    const s = E.app.selection();
    const to = s.to || Date.now();
    const from = s.from || to - 86400e3;
    return { service: s.service, version: s.version, from, to };
  }

  function query(sel, extra) {
    const p = E.api.addSelection(new URLSearchParams(), sel, '');
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    return p;
  }

  async function getJSON(path, params) {
    const resp = await fetch(E.api.url(path, params), { cache: 'no-store' });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error((body && body.error) || path + ': HTTP ' + resp.status);
    return body;
  }

  function flameLink(sel, endpoint) {
    const p = new URLSearchParams();
    if (sel.service) p.set('s', sel.service);
    if (sel.version) p.set('v', sel.version);
    p.set('from', String(Math.floor(sel.from)));
    p.set('to', String(Math.ceil(sel.to)));
    p.set('ep', endpoint);
    return '#' + p.toString();
  }

  // "http TLS" when requests were read at the TLS library (plaintext through uprobes)
  const tlsMark = (text, tls) => text + (tls ? ' TLS' : '');
  const tlsTitle = (r) => (r.tls ? fmt(r.tls) + ' of ' + fmt(r.count) + ' over TLS' : '');

  function renderEndpoints(rows, sel) {
    const table = $('req-endpoints');
    const body = head(table, [['Endpoint'], ['Protocol'], ['Rate', 'num'], ['Errors', 'num'],
      ['p50', 'num'], ['p99', 'num'], ['Requests', 'num'], ['Rate over time']]);
    for (const r of rows) {
      const tr = document.createElement('tr');
      const a = document.createElement('a');
      a.href = flameLink(sel, r.endpoint);
      a.textContent = r.endpoint;
      a.title = 'Flame graph of the CPU spent serving ' + r.endpoint + ' in this window';
      a.className = 'endpoint';
      cell(tr, a, 'fn');
      cell(tr, tlsMark(r.protocol, r.tls), '', tlsTitle(r));
      cell(tr, rate(r.rate), 'num');
      cell(tr, (100 * r.error_rate).toFixed(2) + '%', 'num' + (r.errors ? ' diff more' : ''),
        Object.entries(r.statuses).map(([k, v]) => k + ': ' + fmt(v)).join(', '));
      cell(tr, ms(r.p50_ms), 'num');
      cell(tr, ms(r.p99_ms), 'num');
      cell(tr, fmt(r.count), 'num');
      cell(tr, sparkline(r.series, r.series_errors));
      body.appendChild(tr);
    }
    table.hidden = !rows.length;
    $('req-endpoints-empty').hidden = !!rows.length;
  }

  function renderCalls(rows, slowCounts) {
    const table = $('req-calls');
    const body = head(table, [['Statement or call'], ['Protocol'], ['Peer'], ['Calls', 'num'],
      ['Average', 'num'], ['p99', 'num'], ['Errors', 'num'], ['Slow calls', 'num']]);
    for (const r of rows) {
      const tr = document.createElement('tr');
      cell(tr, r.endpoint, 'fn', r.endpoint);
      cell(tr, tlsMark(r.protocol, r.tls), '', tlsTitle(r));
      cell(tr, r.peer || '');
      cell(tr, fmt(r.count), 'num');
      cell(tr, ms(r.avg_ms), 'num');
      cell(tr, ms(r.p99_ms), 'num');
      cell(tr, fmt(r.errors), 'num' + (r.errors ? ' diff more' : ''));
      const slow = slowCounts.get(r.protocol + ' ' + r.endpoint) || 0;
      cell(tr, fmt(slow), 'num' + (slow ? ' diff more' : ''));
      body.appendChild(tr);
    }
    table.hidden = !rows.length;
    $('req-calls-empty').hidden = !!rows.length;
  }

  function renderSlow(spans) {
    const table = $('req-slow');
    const body = head(table, [['When'], ['Duration', 'num'], ['Role'], ['Endpoint'], ['Peer'],
      ['Status'], ['Text']]);
    for (const s of spans) {
      const tr = document.createElement('tr');
      cell(tr, E.timeLabel(s.time, 86400e3));
      cell(tr, ms(s.duration_ms), 'num');
      cell(tr, tlsMark(s.role, s.tls));
      cell(tr, s.endpoint, 'fn', s.endpoint);
      cell(tr, s.peer);
      cell(tr, s.status + (s.err ? ' \u00b7 ' + s.err : ''), s.error ? 'diff more' : '');
      cell(tr, s.text || '', 'fn text', s.text || '');
      body.appendChild(tr);
    }
    table.hidden = !spans.length;
    $('req-slow-empty').hidden = !!spans.length;
  }

  async function load() {
    const mine = ++seq;
    const status = $('status');
    const sel = selection();
    try {
      const [served, calls, slow] = await Promise.all([
        getJSON('spans', query(sel, { role: 'server' })),
        getJSON('spans', query(sel, { role: 'client', by: 'peer' })),
        getJSON('spans/slow', query(sel, { limit: '200' })),
      ]);
      if (!side.shown() || mine !== seq) return;
      const slowCounts = new Map();
      for (const s of slow.spans) {
        if (s.role !== 'client') continue;
        const k = s.protocol + ' ' + s.endpoint;
        slowCounts.set(k, (slowCounts.get(k) || 0) + 1);
      }
      renderEndpoints(served.rows, sel);
      renderCalls(calls.rows, slowCounts);
      renderSlow(slow.spans);
      const n = served.rows.reduce((a, r) => a + r.count, 0);
      const c = calls.rows.reduce((a, r) => a + r.count, 0);
      status.textContent = (sel.service || 'all services') + ' \u00b7 ' + fmt(n) + ' requests served, ' +
        fmt(c) + ' calls made';
      status.classList.remove('error');
      document.body.dataset.requests = String(seq);
    } catch (e) {
      status.textContent = 'Error: ' + e.message;
      status.classList.add('error');
    }
  }

  const side = E.sideTab({
    name: 'requests',
    tab, view, load, pickers: true,
    hint: 'Requests seen on the wire (HTTP/1.x, MySQL, PostgreSQL, Redis), no instrumentation. ' +
      'Click an endpoint for the CPU spent serving it.',
  });

  E.requests = { show: side.show, hide: side.hide, load };
})(window.Ember = window.Ember || {});
