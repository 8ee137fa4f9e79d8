/*
 * app.js - Ember's page: the state, the URL, the pickers and the views.
 *
 * Everything the page shows follows from one state object S, which lives in
 * the URL hash so that a link (or a reload) reproduces the view: service,
 * version (B, the selection), what to compare with (A: another version or
 * another time range), the time window and brushes, the view (flame graph,
 * top functions, sandwich), search, zoom path, sandwich function, table
 * sort and the diff options.  Controls change S, then write the hash and
 * reload what depends on it; answers to superseded requests are dropped.
 *
 * Diff mode is on whenever a baseline A is chosen: the flame graph becomes
 * the differential one (widths from B, colours by change of share), the top
 * table gains change columns, and a second pprof link downloads A.
 *
 * The flame graph can be reshaped (focus on a function, hide frames, merge
 * recursion: transform.js), the top table computed from the reshaped tree
 * then; exported as folded text or SVG (export.js); and shown with the
 * table beside it, the two linked by hover and click.  In a diff, the
 * sandwich is computed from the diff's tree, so it shows both sides.
 */
'use strict';

(function (E) {
  const RANGES = { '15m': 15 * 60e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, all: 0 };
  const DEFAULTS = {
    svc: '', ver: '', cmp: '', r: '24h', from: 0, to: 0, afrom: 0, ato: 0, view: 'flame', ep: '', t: 'cpu',
    q: '', z: [], fn: '', sort: '', asc: false, pal: 'rb', by: 'delta', neg: false, side: '', allsvc: false,
    live: '', foc: '', hide: '', rec: false, split: false, pid: 0, grp: '',
  };
  const VIEWS = ['flame', 'top', 'sandwich'];
  const SORTS = ['self', 'total', 'diff', 'diff_total'];
  const STEPS = [10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400];

  const $ = (id) => document.getElementById(id);
  const ui = {
    service: $('service'), svcFilter: $('svc-filter'), version: $('version'), base: $('base'), range: $('range'),
    refresh: $('refresh'), live: $('live'), pprof: $('pprof'), pprofBase: $('pprof-base'),
    timeline: $('timeline'), tlRange: $('tl-range'), tlClear: $('tl-clear'), tlKey: $('tl-key'),
    brushSide: $('brush-side'), tabs: document.querySelectorAll('.tabs [data-view]'),
    search: $('search'), legend: $('legend'), scale: $('scale'), palette: $('palette'),
    colorBy: $('colorby'), negated: $('negated'), vanished: $('vanished'),
    crumbs: $('crumbs'), status: $('status'), match: $('match'), empty: $('empty'),
    flame: $('flame'), top: $('top'), fn: $('fn'), fnList: $('fn-list'),
    hint: $('hint'), tools: $('tools'), focus: $('focus'), focusClear: $('focus-clear'), hide: $('hide'),
    rec: $('rec'), exportFolded: $('export-folded'), exportSvg: $('export-svg'), split: $('split'),
    main: document.querySelector('main'), pid: $('pid'), byproc: $('byproc'),
  };

  const fmt = (n) => Number(n).toLocaleString('en-US');
  const samples = (n) => fmt(n) + (Number(n) === 1 ? ' sample' : ' samples');
  /* services under this share of all samples are folded into "show all" */
  const SMALL_SERVICE = 0.005;
  const pct = (v, of) => (of > 0 ? ((100 * v) / of).toFixed(2) : '0.00') + '%';

  let S = Object.assign({}, DEFAULTS);
  let services = [];
  let targets = [];         /* /api/targets: the processes behind the services */
  let brushSide = 'b';
  let flameData = null;     /* the last /api/flamegraph or /api/diff answer */
  let diffOn = false;       /* flameData is a diff */
  let diffScale = 0.01;
  let topData = null;
  let viewRoot = null;      /* flameData's tree reshaped (focus, hide, recursion) */

  /* ---- state <-> URL ---- */

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const s = Object.assign({}, DEFAULTS);
    s.svc = p.get('s') || '';
    s.ver = p.get('v') || '';
    s.cmp = p.get('cmp') || '';
    s.ep = p.get('ep') || '';
    s.t = E.profileType.parse(p.get('t'));
    s.r = p.get('r') in RANGES ? p.get('r') : DEFAULTS.r;
    for (const k of ['from', 'to', 'afrom', 'ato']) s[k] = Math.max(0, parseInt(p.get(k), 10) || 0);
    s.view = VIEWS.includes(p.get('view')) ? p.get('view') : 'flame';
    s.q = p.get('q') || '';
    s.z = p.getAll('z');
    s.fn = p.get('fn') || '';
    s.sort = SORTS.includes(p.get('sort')) ? p.get('sort') : '';
    s.asc = p.get('asc') === '1';
    s.allsvc = p.get('svcs') === 'all';
    s.live = ['0', '1'].includes(p.get('live')) ? p.get('live') : '';
    s.side = /^[a-z]+$/.test(p.get('tab') || '') ? p.get('tab') : '';
    s.pal = p.get('pal') in E.diff.PALETTES ? p.get('pal') : 'rb';
    s.by = p.get('by') === 'self' ? 'delta_self' : 'delta';
    s.neg = p.get('neg') === '1';
    s.foc = p.get('focus') || '';
    s.hide = p.get('hide') || '';
    s.rec = p.get('rec') === '1';
    s.split = p.get('split') === '1';
    s.pid = Math.max(0, parseInt(p.get('pid'), 10) || 0);
    s.grp = p.get('group') === 'process' ? 'process' : '';
    S = s;
  }

  function writeHash() {
    const p = new URLSearchParams();
    const put = (k, v) => {
      if (v) p.set(k, String(v));
    };
    put('s', S.svc);
    put('v', S.ver);
    put('pid', S.pid);
    put('cmp', S.cmp);
    put('ep', S.ep);
    if (S.t !== 'cpu') p.set('t', S.t);
    if (S.r !== DEFAULTS.r) p.set('r', S.r);
    put('from', S.from);
    put('to', S.to);
    put('afrom', S.afrom);
    put('ato', S.ato);
    if (S.view !== 'flame') p.set('view', S.view);
    put('q', S.q);
    for (const z of S.z) p.append('z', z);
    put('fn', S.fn);
    put('sort', S.sort);
    if (S.asc) p.set('asc', '1');
    if (S.allsvc) p.set('svcs', 'all');
    put('live', S.live);
    put('tab', S.side);
    if (S.pal !== 'rb') p.set('pal', S.pal);
    if (S.by === 'delta_self') p.set('by', 'self');
    if (S.neg) p.set('neg', '1');
    put('focus', S.foc);
    put('hide', S.hide);
    if (S.rec) p.set('rec', '1');
    if (S.split) p.set('split', '1');
    put('group', S.grp);
    const h = '#' + p.toString();
    if (h !== location.hash) history.replaceState(null, '', h);
  }

  /* ---- selections ---- */

  function service() {
    return services.find((s) => s.service === S.svc) || null;
  }

  /* The time window the pickers show: the preset, ending now. */
  function windowRange() {
    const span = RANGES[S.r];
    if (!span) return { from: 0, to: 0 };
    return { from: Date.now() - span, to: 0 };
  }

  /* The selection (B); ep: the CPU of one endpoint's requests (from the Requests tab). */
  function selB() {
    const w = S.from ? { from: S.from, to: S.to } : windowRange();
    return { service: S.svc, version: S.ver, from: w.from, to: w.to, endpoint: S.ep, type: S.t, pid: S.pid };
  }

  /* The baseline, or null when not comparing. */
  function selA() {
    if (S.cmp.startsWith('v:')) {
      const w = S.from ? { from: S.from, to: S.to } : windowRange();
      return { service: S.svc, version: S.cmp.slice(2), from: w.from, to: w.to, endpoint: S.ep, type: S.t };
    }
    /* another version runs in other processes: the pid only narrows a time range's baseline */
    if (S.cmp === 'range' && S.afrom) return { service: S.svc, version: S.ver, from: S.afrom, to: S.ato, endpoint: S.ep, type: S.t, pid: S.pid };
    return null;
  }

  function sideLabel(sel) {
    if (!sel) return '';
    let s = (sel.service || 'all services') + ' ' + (sel.version || 'all versions');
    if (sel.endpoint) s += ' \u00b7 serving ' + sel.endpoint;
    if (sel.pid) s += ' \u00b7 pid ' + sel.pid;
    if (S.cmp === 'range' && sel.from) s += ' ' + E.timeLabel(sel.from, 86400e3) + '\u2013' + E.timeLabel(sel.to || Date.now(), 86400e3);
    return s;
  }

  /* ---- status lines ---- */

  function setStatus(text, isError) {
    ui.status.textContent = text;
    ui.status.classList.toggle('error', !!isError);
  }

  /* A regular expression from what the user typed (a literal when it does not parse). */
  function userRe(text) {
    const q = text.trim();
    if (!q) return null;
    try {
      return new RegExp(q, 'i');
    } catch (e) {
      return new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    }
  }

  function searchRe() {
    return userRe(S.q);
  }

  /* ---- focus, hide, merged recursion (transform.js) ---- */

  const reshaped = () => !!(S.foc || S.hide.trim() || S.rec);

  /* The tree the flame graph and the table show: the answer reshaped. */
  function shapeTree(data, diff) {
    return E.transform.apply(data.root, { focus: S.foc, hide: userRe(S.hide), rec: S.rec },
      diff ? { a: data.a_total, b: data.b_total } : null);
  }

  function shapeText() {
    const parts = [];
    if (S.foc) parts.push('focus on ' + S.foc);
    if (S.hide.trim()) parts.push('hiding /' + S.hide.trim() + '/');
    if (S.rec) parts.push('recursion merged');
    if (S.grp && !selA() && S.view === 'flame') parts.push('by process');
    return parts.length ? '  \u00b7  ' + parts.join(', ') : '';
  }

  /* ---- pickers ---- */

  function option(select, value, text) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    select.appendChild(o);
    return o;
  }

  function versionSpan(v) {
    return 'seen ' + E.timeLabel(v.first_seen, 3 * 86400e3) + ' \u2013 ' + E.timeLabel(v.last_seen, 3 * 86400e3);
  }

  /*
   * The service picker: largest first; services under SMALL_SERVICE of all
   * samples (a shell command, a cron job) hidden behind a last "show all"
   * entry unless chosen; the filter box narrows the list by name.
   */
  function fillServices() {
    const all = services.reduce((t, s) => t + s.samples, 0);
    const filter = ui.svcFilter.value.trim().toLowerCase();
    ui.service.replaceChildren();
    if (!services.length) option(ui.service, '', 'no data yet');
    let hidden = 0;
    for (const s of services) {
      const small = s.samples < SMALL_SERVICE * all;
      const match = !filter || s.service.toLowerCase().includes(filter);
      if (s.service !== S.svc && (!match || (small && !S.allsvc && !filter))) {
        if (small && match) hidden++;
        continue;
      }
      option(ui.service, s.service, s.service + ' \u00b7 ' + samples(s.samples));
    }
    if (hidden) option(ui.service, '*all', '+ ' + hidden + ' small service' + (hidden === 1 ? '' : 's') + ' (under 0.5%)');
    else if (S.allsvc && !filter && services.some((s) => s.samples < SMALL_SERVICE * all)) option(ui.service, '*few', '\u2212 hide small services');
    ui.service.value = S.svc;
  }

  function fillPickers() {
    fillServices();
    const svc = service();
    const versions = svc ? svc.versions || [] : [];
    ui.version.replaceChildren();
    option(ui.version, '', 'all versions');
    for (const v of versions) option(ui.version, v.version, v.version + ' \u00b7 ' + samples(v.samples)).title = versionSpan(v);
    if (S.ver && !versions.some((v) => v.version === S.ver)) option(ui.version, S.ver, S.ver + ' (no samples)');
    ui.version.value = S.ver;
    fillProcesses();
    ui.base.replaceChildren();
    option(ui.base, '', 'nothing');
    for (const v of versions) {
      if (v.version !== S.ver) option(ui.base, 'v:' + v.version, 'version ' + v.version).title = versionSpan(v);
    }
    if (S.cmp.startsWith('v:') && ![...ui.base.options].some((o) => o.value === S.cmp)) {
      option(ui.base, S.cmp, 'version ' + S.cmp.slice(2) + ' (no samples)');
    }
    option(ui.base, 'range', 'another time range');
    ui.base.value = S.cmp;
    ui.range.value = S.r;
    $('ptype').value = S.t;
    ui.search.value = S.q;
    ui.palette.value = S.pal;
    ui.colorBy.value = S.by;
    ui.negated.checked = S.neg;
    ui.focus.value = S.foc;
    ui.focus.classList.toggle('on', !!S.foc);
    ui.focusClear.hidden = !S.foc;
    if (document.activeElement !== ui.hide) ui.hide.value = S.hide;
    ui.hide.classList.toggle('on', !!S.hide.trim());
    ui.rec.checked = S.rec;
    ui.split.checked = S.split;
    ui.byproc.checked = !!S.grp;
  }

  const MAX_PROCESSES = 100; /* entries of the process picker, most samples first */

  /*
   * The process picker: the processes (pids) of the service and version,
   * by samples, one entry each (a pid that ran several versions sums them).
   */
  function fillProcesses() {
    const byPid = new Map();
    for (const t of targets) {
      if (t.service !== S.svc || (S.ver && t.version !== S.ver) || (t.type && t.type !== S.t)) continue;
      const e = byPid.get(t.pid) || { pid: t.pid, comm: t.comm, samples: 0 };
      e.samples += t.samples;
      byPid.set(t.pid, e);
    }
    const list = [...byPid.values()].sort((a, b) => b.samples - a.samples || a.pid - b.pid).slice(0, MAX_PROCESSES);
    ui.pid.replaceChildren();
    option(ui.pid, '', 'all processes' + (list.length ? ' (' + byPid.size + ')' : ''));
    for (const e of list) option(ui.pid, String(e.pid), e.comm + ' ' + e.pid + ' \u00b7 ' + samples(e.samples));
    if (S.pid && !byPid.has(S.pid)) option(ui.pid, String(S.pid), 'pid ' + S.pid + ' (no samples)');
    ui.pid.value = S.pid ? String(S.pid) : '';
    /* one process (or none): nothing to pick */
    ui.pid.parentElement.hidden = byPid.size < 2 && !S.pid;
  }

  async function loadServices() {
    E.api.targets().then((d) => {
      targets = d.targets || [];
      fillProcesses();
    }).catch(() => {});
    const data = await E.api.services();
    services = (data.services || []).slice().sort((a, b) => b.samples - a.samples);
    if (!service() && services.length) S.svc = services[0].service;
    fillPickers();
  }

  /* ---- timeline ---- */

  const timeline = new E.Timeline(ui.timeline, { onBrush });

  /*
   * The timeline shows the time window, trimmed to the service's samples
   * (a day-long window over an hour of data would be mostly empty).
   */
  function timelineWindow() {
    const w = windowRange();
    const now = Date.now();
    const svc = service();
    if (!svc) return { from: w.from || now - 3600e3, to: now };
    const pad = Math.max(60e3, (svc.last_seen - svc.first_seen) * 0.02);
    const to = Math.min(now, svc.last_seen + pad);
    let from = Math.max(w.from || 0, svc.first_seen - pad);
    if (to - from < 300e3) from = to - 300e3;
    return { from, to };
  }

  async function loadTimeline() {
    const tick = E.api.latest('timeline');
    const w = timelineWindow();
    const width = Math.max(200, ui.timeline.clientWidth);
    const want = (w.to - w.from) / 1000 / (width / 3);
    const step = STEPS.find((s) => s >= want) || STEPS[STEPS.length - 1];
    const base = { service: S.svc, from: w.from, to: w.to };
    const sides = [{ label: 'B ' + (S.ver || 'all versions'), sel: Object.assign({}, base, { version: S.ver, pid: S.pid }), color: '#e8590c' }];
    if (S.cmp.startsWith('v:')) {
      sides.push({ label: 'A ' + S.cmp.slice(2), sel: Object.assign({}, base, { version: S.cmp.slice(2) }), color: 'rgba(59, 91, 219, 0.75)' });
    }
    const answers = await Promise.all(sides.map((s) => E.api.timeline(s.sel, step)));
    if (!tick()) return;
    timeline.setData(sides.map((s, i) => ({ label: s.label, color: s.color, points: answers[i].points || [] })),
      w.from, w.to, answers[0].step_ms || step * 1000);
    ui.tlKey.replaceChildren();
    if (sides.length > 1) {
      for (const s of sides) {
        const k = document.createElement('span');
        k.className = 'key';
        const dot = document.createElement('i');
        dot.style.background = s.color;
        k.append(dot, document.createTextNode(s.label));
        ui.tlKey.appendChild(k);
      }
    }
    syncBrushes();
  }

  function syncBrushes() {
    timeline.setBrushes({
      b: S.from ? [S.from, S.to || Date.now()] : null,
      a: S.cmp === 'range' && S.afrom ? [S.afrom, S.ato] : null,
    }, brushSide);
    const parts = [];
    const span = (f, t) => E.timeLabel(f, 86400e3) + ' \u2013 ' + E.timeLabel(t, 86400e3);
    if (S.from) parts.push('B: ' + span(S.from, S.to || Date.now()));
    if (S.cmp === 'range') parts.push(S.afrom ? 'A: ' + span(S.afrom, S.ato) : 'A: drag on the timeline to pick it');
    ui.tlRange.textContent = parts.join('  \u00b7  ');
    ui.tlClear.hidden = !S.from && !(S.cmp === 'range' && S.afrom);
    ui.brushSide.hidden = S.cmp !== 'range';
    for (const b of ui.brushSide.querySelectorAll('button')) {
      b.setAttribute('aria-pressed', String(b.dataset.side === brushSide));
    }
  }

  function onBrush(side, from, to) {
    if (side === 'a') {
      S.afrom = from || 0;
      S.ato = to || 0;
      if (from) brushSide = 'b'; /* baseline chosen: the next drag edits B */
    } else {
      S.from = from || 0;
      S.to = to || 0;
    }
    changed({ timeline: false });
  }

  /* ---- the flame graph (plain or diff) ---- */

  /* The agent's count of stacks cut short (api/stats agent.collector.truncated), or null. */
  let truncatedCount = null;
  function loadAgentStats() {
    fetch('api/stats', { cache: 'no-store' }).then((r) => r.json()).then((st) => {
      const c = st && st.agent && st.agent.collector;
      truncatedCount = c && typeof c.truncated === 'number' ? c.truncated : null;
    }).catch(() => {});
  }

  /* Why a stack ends in [truncated], for its tooltip. */
  function truncatedLines() {
    return [
      ['loc', 'The unwinder could not walk this stack to its end: deeper than its limit, a frame with ' +
        'no unwind information (code without frame pointers or CFI), or a stack it could not read. ' +
        'The frames above it are right; the callers below it are missing.'],
      ['tags', truncatedCount === null
        ? 'Counted by the agent: /api/stats agent.collector.truncated'
        : 'The agent has cut ' + fmt(truncatedCount) + ' sampled stacks short so far (/api/stats agent.collector.truncated)'],
    ];
  }

  function tooltipLines(n, graph) {
    const lines = [['name', n.name]];
    if (n.name === '[truncated]') lines.push(...truncatedLines());
    if (n.file) lines.push(['loc', n.file + (n.line ? ':' + n.line : '')]);
    const tags = [n.kernel && 'kernel', n.inlined && 'inlined'].filter(Boolean);
    if (tags.length) lines.push(['tags', tags.join(' \u00b7 ')]);
    const diffGraph = graph === flame ? diffOn : !!sandwich.diff;
    if (n.a !== undefined && n.b !== undefined && diffGraph) {
      const sides = graph === flame ? flameData : sandwich.data;
      const NA = sides.a_total;
      const NB = sides.b_total;
      lines.push(['num', 'B: ' + fmt(n.b) + ' samples (' + pct(n.b, NB) + '), self ' + fmt(n.b_self || 0) + ' (' + pct(n.b_self || 0, NB) + ')']);
      lines.push(['num a', 'A: ' + fmt(n.a) + ' samples (' + pct(n.a, NA) + '), self ' + fmt(n.a_self || 0) + ' (' + pct(n.a_self || 0, NA) + ')']);
      if (n.delta !== undefined) {
        lines.push(['', 'change: ' + E.diff.pp(n.delta) + ' total, ' + E.diff.pp(n.delta_self || 0) + ' self']);
      }
      const up = parentOf(n, graph);
      if (up) {
        lines.push(['', 'of parent ' + up.name + ': ' + pct(n.b, up.b) + ' in B, ' + pct(n.a, up.a) + ' in A']);
      }
      return lines;
    }
    /* in the sandwich, shares are of the whole selection and of the function */
    const inSandwich = graph !== flame && sandwich.data;
    const all = inSandwich ? sandwich.allSamples : graph.totalValue;
    lines.push(['num', 'total: ' + E.profileType.value(n.value, S.t) + ', ' + pct(n.value, all) + ' of all']);
    if (inSandwich) lines.push(['', pct(n.value, graph.totalValue) + ' of ' + graph.root.name]);
    /* a caller's "self" would only say where stacks end: not shown */
    if (n.self !== undefined && graph !== sandwich.callers) {
      lines.push(['', 'self: ' + E.profileType.value(n.self, S.t) + ' (' + pct(n.self, all) + ')']);
    }
    const up = parentOf(n, graph);
    if (up) lines.push(['', pct(n.value, up.value) + ' of parent ' + up.name]);
    const focus = graph.focusNode;
    if (!inSandwich && focus && focus !== graph.root && focus !== up && n !== focus && n.value <= focus.value) {
      lines.push(['', pct(n.value, focus.value) + ' of ' + focus.name]);
    }
    return lines;
  }

  /*
   * The frame drawn under (or, inverted, above) the hovered one n: its
   * caller in a flame graph, the function it calls among the sandwich's
   * callers; null for the root.
   */
  function parentOf(n, graph) {
    const i = graph.hover;
    if (i < 0 || graph.nodes[i] !== n || graph.parent[i] < 0) return null;
    return graph.nodes[graph.parent[i]];
  }

  function hoverHandler(graphRef) {
    return (n, ev) => {
      if (!n) E.tooltip.hide();
      else E.tooltip.show(tooltipLines(n, graphRef()), ev);
    };
  }

  const flameTip = hoverHandler(() => flame);
  const flame = new E.FlameGraph(ui.flame, {
    onHover: (n, ev) => {
      flameTip(n, ev);
      linkFromFlame(n ? n.name : null);
    },
    onZoom: () => {
      S.z = flame.zoomPath();
      writeHash();
      renderCrumbs();
    },
    onContext: (n) => openSandwich(n.name),
  });

  function renderCrumbs() {
    ui.crumbs.replaceChildren();
    if (S.view !== 'flame' || !flame.n) return;
    const chain = flame.chain();
    chain.forEach((i, k) => {
      if (k) {
        const sep = document.createElement('span');
        sep.className = 'sep';
        sep.textContent = '\u203a';
        ui.crumbs.appendChild(sep);
      }
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = k ? flame.nodes[i].name : 'all';
      b.title = k ? 'Zoom to ' + flame.nodes[i].name : 'Reset zoom';
      b.disabled = i === flame.focus;
      b.addEventListener('click', () => flame.zoom(i));
      ui.crumbs.appendChild(b);
    });
    if (chain.length > 1) {
      const name = flame.focusNode.name;
      const chip = (text, title, onClick) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'chip';
        b.textContent = text;
        b.title = title;
        b.addEventListener('click', onClick);
        ui.crumbs.appendChild(b);
      };
      chip('callers & callees', 'Sandwich view of ' + name, () => openSandwich(name));
      if (name !== S.foc) {
        chip('focus', 'Every stack through ' + name + ', its call sites merged', () => setFocus(name));
      }
    }
  }

  /* Samples under the outermost frames matching re, walking an API tree. */
  function matchedValue(root, re, valueOf) {
    let sum = 0;
    const stack = (root.children || []).slice();
    while (stack.length) {
      const n = stack.pop();
      if (re.test(n.name)) sum += valueOf(n);
      else for (const c of n.children || []) stack.push(c);
    }
    return sum;
  }

  function applySearch() {
    const re = searchRe();
    ui.match.textContent = '';
    if (S.view === 'flame' && flame.n) {
      const r = flame.setSearch(re);
      if (re) {
        if (!r.frames && !(diffOn && matchedValue(viewRoot, re, (n) => n.a))) {
          ui.match.textContent = 'No frame matches';
        } else if (diffOn) {
          const b = matchedValue(viewRoot, re, (n) => n.b);
          const a = matchedValue(viewRoot, re, (n) => n.a);
          ui.match.textContent = 'Matched: ' + pct(b, flameData.b_total) + ' of B, ' +
            pct(a, flameData.a_total) + ' of A (' + E.diff.pp(b / (flameData.b_total || 1) - a / (flameData.a_total || 1)) + ')';
        } else {
          ui.match.textContent = 'Matched: ' + pct(r.value, flame.totalValue) + ' of samples (' +
            fmt(r.value) + ' samples in ' + fmt(r.frames) + (r.frames === 1 ? ' frame)' : ' frames)');
        }
      }
    }
    if ((S.view === 'top' || splitOn()) && topData) {
      const shown = renderTable();
      if (re && S.view === 'top') ui.match.textContent = shown + ' of ' + topData.functions.length + ' functions match';
    } else if (S.view === 'sandwich' && sandwich.data) {
      sandwich.setSearch(re);
    }
  }

  function diffPalette() {
    return E.diff.paletteFor(S.pal);
  }

  function layoutFlame() {
    if (!flameData) return;
    if (diffOn) {
      viewRoot = shapeTree(flameData, true);
      diffScale = E.diff.scaleFor(viewRoot, S.by);
      const pal = diffPalette();
      flame.setTree(viewRoot, S.neg ? (n) => n.a : (n) => n.b, E.diff.colorFn(S.by, diffScale), pal);
      E.diff.renderScale(ui.scale, pal, diffScale, S.by);
    } else {
      viewRoot = shapeTree(flameData, false);
      flame.setTree(viewRoot, (n) => n.value);
    }
    flame.zoomToPath(S.z);
    const total = diffOn ? (S.neg ? flameData.a_total : flameData.b_total) : flameData.total;
    ui.empty.hidden = total > 0;
    ui.empty.textContent = diffOn && S.neg ? 'No samples in A.' : !services.length
      ? 'No samples yet. The agent writes what it sampled every few seconds (one flush, 5 s by default): ' +
        (liveOn() ? 'this page shows it as it arrives.' : 'tick Live or press Refresh.')
      : 'No samples for this selection.' + (liveOn() ? ' Live: new samples show up within one flush.' : '');
    if (total > 0 && !flame.n && S.foc) {
      ui.empty.hidden = false;
      ui.empty.textContent = 'No stack of this selection goes through ' + S.foc + '.';
    }
    renderCrumbs();
    applySearch();
  }

  async function loadFlame() {
    const tick = E.api.latest('flame');
    const a = selA();
    const b = selB();
    const data = a ? await E.api.diff(a, b) : await E.api.flamegraph(b, S.grp);
    if (!tick()) return;
    flameData = data;
    diffOn = !!a;
    layoutFlame();
    if (diffOn) {
      E.diff.renderVanished(ui.vanished, data.vanished || [], (name) => {
        S.neg = true;
        ui.negated.checked = true;
        S.q = '^' + name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$';
        ui.search.value = S.q;
        writeHash();
        layoutFlame();
      });
      setStatus('B ' + sideLabel(b) + ': ' + fmt(data.b_total) + ' samples  \u00b7  A ' + sideLabel(a) + ': ' +
        fmt(data.a_total) + ' samples' + (S.neg ? '  \u00b7  negated: widths from A' : '') + shapeText());
    } else {
      setStatus(sideLabel(b) + ' \u00b7 ' + fmt(data.total) + ' samples' +
        (data.truncated ? ' \u00b7 frames under 0.001% omitted' : '') + shapeText());
    }
  }

  function setFocus(name) {
    Object.assign(S, { foc: name, z: [] });
    changed({ timeline: false });
  }

  /* ---- export of the flame graph on screen (export.js) ---- */

  function fileBase() {
    return 'ember-' + (S.svc || 'all') + (S.ver ? '-' + S.ver : '') + (selA() ? (S.neg ? '-A' : '-B') : '');
  }

  function selfOfView() {
    return diffOn ? (S.neg ? (n) => n.a_self || 0 : (n) => n.b_self || 0) : (n) => n.self || 0;
  }

  function exportFolded() {
    if (!flame.n) return;
    E.exporter.download(E.exporter.folded(flame, selfOfView()), fileBase() + '.folded', 'text/plain');
  }

  function exportSvg() {
    if (!flame.n) return;
    const NB = diffOn ? flameData.b_total : flame.totalValue;
    const NA = diffOn ? flameData.a_total : 0;
    const text = diffOn
      ? (n) => 'B: ' + fmt(n.b) + ' samples (' + pct(n.b, NB) + '), A: ' + fmt(n.a) + ' (' + pct(n.a, NA) + ')' +
        (n.delta !== undefined ? ', change ' + E.diff.pp(n.delta) : '')
      : (n) => E.profileType.value(n.value, S.t) + ' (' + pct(n.value, NB) + ')';
    const svg = E.exporter.svg(flame, text, ui.status.textContent);
    E.exporter.download(svg, fileBase() + '.svg', 'image/svg+xml');
  }

  /* ---- top functions ---- */

  /* ---- the table beside the flame graph, linked ---- */

  const splitOn = () => S.split && S.view === 'flame';
  let picked = '';          /* the function clicked in the linked table */

  function renderTable() {
    const shown = E.table.render(ui.top, topData, tableOpts());
    E.table.markRow(ui.top, picked, 'picked');
    return shown;
  }

  /* A frame of the flame graph hovered (name) or left (null): mark its row. */
  function linkFromFlame(name) {
    if (splitOn()) E.table.markRow(ui.top, name, 'linked');
  }

  function pick(name) {
    picked = picked === name ? '' : name;
    E.table.markRow(ui.top, picked, 'picked');
    flame.setMark(picked);
  }

  function tableOpts() {
    const linked = splitOn();
    return {
      onHover: linked ? (name) => flame.setMark(name || picked) : null,
      pickTitle: linked ? 'Click: outline its frames in the flame graph (again: clear)' : null,
      sort: effectiveSort(),
      asc: S.asc,
      filter: searchRe(),
      palette: diffPalette(),
      onSort: (k) => {
        /* the active column again flips the order; a new one starts largest first */
        S.asc = k === effectiveSort() ? !S.asc : false;
        S.sort = k;
        changed({ timeline: false });
      },
      onPick: (name) => (splitOn() ? pick(name) : openSandwich(name)),
    };
  }

  function effectiveSort() {
    if ((S.sort === 'diff' || S.sort === 'diff_total') && !selA()) return 'self';
    return S.sort || (selA() ? 'diff' : 'self');
  }

  /*
   * The top functions of the reshaped tree (focus, hide, merged
   * recursion), computed here from the flame graph's answer: /api/top
   * knows nothing of the reshaping.
   */
  async function reshapedTop(a, b) {
    const data = a ? await E.api.diff(a, b) : await E.api.flamegraph(b);
    const root = shapeTree(data, !!a);
    return E.transform.top(root, a ? { a: data.a_total, b: data.b_total } : { value: data.total },
      effectiveSort(), S.asc, 200);
  }

  async function loadTop() {
    const tick = E.api.latest('top');
    const a = selA();
    const data = reshaped() ? await reshapedTop(a, selB()) : await E.api.top(selB(), a, effectiveSort(), 200, S.asc);
    if (!tick()) return;
    topData = data;
    diffOn = !!a;
    if (splitOn()) {
      renderTable();
      return; /* the flame graph's status stays */
    }
    applySearch();
    setStatus(sideLabel(selB()) + ' \u00b7 ' + fmt(data.total) + ' samples' +
      (a ? '  \u00b7  vs A ' + sideLabel(a) + ': ' + fmt(data.base_total || 0) + ' samples' : '') + shapeText());
  }

  /* ---- sandwich ---- */

  const sandwich = new E.Sandwich({ callers: $('sw-callers'), callees: $('sw-callees'), title: $('sw-title') }, {
    hover: (graph) => hoverHandler(() => graph),
    onContext: (n) => openSandwich(n.name),
  });

  function openSandwich(name) {
    S.fn = name;
    S.view = 'sandwich';
    changed({ timeline: false });
  }

  async function loadSandwich() {
    const tick = E.api.latest('sandwich');
    const b = selB();
    if (!S.fn) {
      /* nothing chosen yet: the function with the most self samples */
      const top = await E.api.top(b, null, 'self', 50);
      if (!tick()) return;
      fillFnList(top);
      if (!top.functions.length) {
        setStatus('No samples for this selection.');
        return;
      }
      S.fn = top.functions[0].name;
      writeHash();
    }
    ui.fn.value = S.fn;
    const a = selA();
    if (a) {
      /* the diff's sandwich: callers and callees from the diff tree, both sides */
      const d = await E.api.diff(a, b);
      if (!tick()) return;
      const sw = E.transform.sandwich(d.root, S.fn, { a: d.a_total, b: d.b_total });
      sandwich.setDiff({ function: S.fn, callers: sw.callers, callees: sw.callees, a_total: d.a_total, b_total: d.b_total },
        { negated: S.neg, by: S.by, palette: diffPalette() });
      E.diff.renderScale(ui.scale, diffPalette(), sandwich.scale, S.by);
      applySearch();
      setStatus('B ' + sideLabel(b) + ': ' + fmt(d.b_total) + ' samples  \u00b7  A ' + sideLabel(a) + ': ' +
        fmt(d.a_total) + ' samples' + (S.neg ? '  \u00b7  negated: widths from A' : ''));
      if (!ui.fnList.options.length) E.api.top(b, null, 'total', 200).then(fillFnList).catch(() => {});
      return;
    }
    const data = await E.api.sandwich(S.fn, b);
    if (!tick()) return;
    sandwich.set(data);
    applySearch();
    setStatus(sideLabel(b) + ' \u00b7 ' + fmt(sandwich.allSamples || 0) + ' samples');
    if (!ui.fnList.options.length) E.api.top(b, null, 'total', 200).then(fillFnList).catch(() => {});
  }

  function fillFnList(top) {
    ui.fnList.replaceChildren();
    for (const f of top.functions) option(ui.fnList, f.name, '');
  }

  /* ---- putting it together ---- */

  function showView() {
    for (const t of ui.tabs) {
      const on = t.dataset.view === S.view;
      t.setAttribute('aria-selected', String(on));
      t.classList.toggle('active', on);
    }
    for (const v of VIEWS) $('view-' + v).hidden = !(v === S.view || (v === 'top' && splitOn())) || !!sideShown();
    ui.main.classList.toggle('split', splitOn() && !sideShown());
    const a = selA();
    ui.legend.hidden = !(a && (S.view === 'flame' || S.view === 'sandwich')) || !!sideShown();
    ui.vanished.classList.toggle('off', S.view !== 'flame'); /* the vanished list is the flame graph's */
    ui.pprofBase.hidden = !a;
    ui.crumbs.hidden = S.view !== 'flame';
    ui.tools.hidden = S.view === 'sandwich' || !!sideShown();
    ui.exportFolded.parentElement.hidden = S.view !== 'flame';
    ui.split.parentElement.hidden = S.view !== 'flame';
    ui.byproc.parentElement.hidden = S.view !== 'flame' || !!a; /* the diff is not grouped */
    ui.hint.textContent = {
      flame: 'Hover a frame for details, click to zoom in, Esc or the breadcrumbs to zoom out, right-click for its callers and callees.' +
        (a ? ' Widths come from B; colours show the change of share against A.' : '') +
        (splitOn() ? ' The table is linked: hover a row to outline its frames, click it to keep them outlined.' : ''),
      top: 'Click a column to sort, a function for its callers and callees. The search box filters the rows.',
      sandwich: 'Callers above the function, callees below it. Right-click a frame to centre the sandwich on it.' +
        (a ? ' Widths come from B; colours show the change of share against A.' : ''),
    }[S.view];
  }

  function updateLinks() {
    const b = selB();
    const a = selA();
    ui.pprof.href = E.api.pprofUrl(b);
    /* the server names the files too (ember-SERVICE-VERSION[-FROM-TO].pb.gz) */
    ui.pprof.download = 'ember-' + (S.svc || 'all') + (S.ver ? '-' + S.ver : '') + '.pb.gz';
    if (a) {
      ui.pprofBase.href = E.api.pprofUrl(a);
      ui.pprofBase.download = 'ember-' + (S.svc || 'all') + (a.version ? '-' + a.version : '') + '.pb.gz';
    }
  }

  async function loadView() {
    try {
      if (S.view === 'flame' && splitOn()) await Promise.all([loadFlame(), loadTop()]);
      else if (S.view === 'flame') await loadFlame();
      else if (S.view === 'top') await loadTop();
      else await loadSandwich();
    } catch (e) {
      setStatus('Error: ' + e.message, true);
    }
  }

  /* The state changed: URL, controls, data. */
  function changed(what) {
    what = what || {};
    flushSearch(); /* a search typed just before this change counts */
    writeHash();
    fillPickers();
    showView();
    updateLinks();
    syncBrushes();
    syncLive();
    ui.match.textContent = '';
    if (what.timeline !== false) loadTimeline().catch((e) => setStatus('Error: ' + e.message, true));
    return loadView();
  }

  /* ---- live mode: poll while the window ends now ---- */

  const LIVE_MS = 10000;
  let liveTimer = 0;

  /*
   * Live unless switched off; by default only for the "last N" windows
   * without a brush, and not while ranges are being picked on the timeline.
   */
  function liveOn() {
    if (S.live) return S.live === '1';
    return RANGES[S.r] > 0 && !S.from && !S.afrom && S.cmp !== 'range';
  }

  function syncLive() {
    ui.live.checked = liveOn();
    ui.live.parentElement.classList.toggle('on', liveOn());
    clearInterval(liveTimer);
    liveTimer = liveOn() ? setInterval(liveTick, LIVE_MS) : 0;
  }

  /* Reload what the page shows, keeping zoom, search and the side tab; skipped while hidden. */
  async function liveTick() {
    if (document.hidden || sideShown()) return;
    try {
      await loadServices();
    } catch (e) {
      return; /* the next tick retries */
    }
    writeHash(); /* the first service to arrive is picked */
    loadAgentStats();
    updateLinks();
    loadTimeline().catch(() => {});
    loadView();
  }

  /* The side tab (sidetab.js) the URL names and that is shown, or null. */
  function sideShown() {
    const t = S.side && E.sideTabs && E.sideTabs[S.side];
    return t && t.shown() ? t : null;
  }

  /* Show the side tab the URL names (a reload, a link). */
  function openSide() {
    const t = S.side && E.sideTabs && E.sideTabs[S.side];
    if (t && !t.shown()) t.show();
  }

  async function start() {
    readHash();
    showView();
    try {
      await loadServices();
    } catch (e) {
      setStatus('Error: ' + e.message, true);
      return;
    }
    brushSide = S.cmp === 'range' && !S.afrom ? 'a' : 'b';
    loadAgentStats();
    await changed();
    openSide();
    document.body.dataset.ready = '1';
  }

  /* ---- wiring ---- */

  ui.service.addEventListener('change', () => {
    if (ui.service.value === '*all' || ui.service.value === '*few') {
      S.allsvc = ui.service.value === '*all';
      ui.svcFilter.value = '';
      writeHash();
      fillServices();
      return;
    }
    ui.svcFilter.value = '';
    Object.assign(S, { svc: ui.service.value, ver: '', cmp: S.cmp === 'range' ? 'range' : '', z: [], fn: '', ep: '', pid: 0 });
    changed();
  });
  ui.svcFilter.addEventListener('input', fillServices);
  ui.svcFilter.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    const first = [...ui.service.options].find((o) => !o.value.startsWith('*') && o.value !== S.svc &&
      o.value.toLowerCase().includes(ui.svcFilter.value.trim().toLowerCase()));
    if (first) {
      ui.service.value = first.value;
      ui.service.dispatchEvent(new Event('change'));
    }
  });
  ui.pid.addEventListener('change', () => {
    Object.assign(S, { pid: parseInt(ui.pid.value, 10) || 0, z: [] });
    changed();
  });
  ui.version.addEventListener('change', () => {
    S.ver = ui.version.value;
    S.pid = 0;
    if (S.cmp === 'v:' + S.ver) S.cmp = '';
    S.fn = '';
    changed();
  });
  ui.base.addEventListener('change', () => {
    S.cmp = ui.base.value;
    if (S.cmp.startsWith('v:') && !S.ver) {
      /* comparing with a version: look at the newest other one */
      const other = (service() ? service().versions : []).find((v) => 'v:' + v.version !== S.cmp);
      if (other) S.ver = other.version;
    }
    if (S.cmp === 'range' && !S.afrom) brushSide = 'a';
    if (S.cmp !== 'range') {
      S.afrom = 0;
      S.ato = 0;
      brushSide = 'b';
    }
    changed();
  });
  E.profileType.bind(document.getElementById('ptype'), S.t, (t) => {
    Object.assign(S, { t, z: [], fn: '' });
    changed();
  });
  ui.range.addEventListener('change', () => {
    Object.assign(S, { r: ui.range.value, from: 0, to: 0, afrom: 0, ato: 0, ep: '' });
    changed();
  });
  ui.live.addEventListener('change', () => {
    S.live = ui.live.checked ? '1' : '0';
    writeHash();
    syncLive();
    if (liveOn()) liveTick();
  });
  ui.refresh.addEventListener('click', async () => {
    try {
      await loadServices();
    } catch (e) {
      setStatus('Error: ' + e.message, true);
      return;
    }
    changed();
  });
  /* presets end "now": recompute the links when they are used */
  ui.pprof.addEventListener('click', updateLinks);
  ui.pprofBase.addEventListener('click', updateLinks);
  ui.tlClear.addEventListener('click', () => {
    Object.assign(S, { from: 0, to: 0, afrom: 0, ato: 0 });
    if (S.cmp === 'range') brushSide = 'a';
    changed({ timeline: false });
  });
  for (const b of ui.brushSide.querySelectorAll('button')) {
    b.addEventListener('click', () => {
      brushSide = b.dataset.side;
      syncBrushes();
    });
  }
  for (const t of ui.tabs) {
    t.addEventListener('click', () => {
      S.view = t.dataset.view;
      changed({ timeline: false });
    });
  }
  let searchTimer = 0;
  function flushSearch() {
    if (!searchTimer) return;
    clearTimeout(searchTimer);
    searchTimer = 0;
    S.q = ui.search.value;
  }
  ui.search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      searchTimer = 0;
      S.q = ui.search.value;
      writeHash();
      applySearch();
    }, 150);
  });
  ui.palette.addEventListener('change', () => {
    S.pal = ui.palette.value;
    writeHash();
    if (diffOn && flameData && S.view === 'flame') {
      const pal = diffPalette();
      flame.recolor(E.diff.colorFn(S.by, diffScale), pal);
      E.diff.renderScale(ui.scale, pal, diffScale, S.by);
    }
    if (S.view === 'sandwich' && sandwich.diff) loadView();
  });
  ui.colorBy.addEventListener('change', () => {
    S.by = ui.colorBy.value;
    writeHash();
    layoutFlame();
    if (S.view === 'sandwich' && sandwich.diff) loadView();
  });
  ui.negated.addEventListener('change', () => {
    S.neg = ui.negated.checked;
    writeHash();
    if (S.view === 'flame' || S.view === 'sandwich') loadView();
  });
  ui.focus.addEventListener('change', () => {
    if (ui.focus.value.trim() !== S.foc) setFocus(ui.focus.value.trim());
  });
  ui.focus.addEventListener('focus', () => {
    /* suggest the functions of the graph when the sandwich has not listed any */
    if (ui.fnList.options.length || !flame.n) return;
    const names = new Set();
    for (let i = 1; i < flame.n && names.size < 500; i++) names.add(flame.nodes[i].name);
    for (const name of names) option(ui.fnList, name, '');
  });
  ui.focusClear.addEventListener('click', () => setFocus(''));
  let hideTimer = 0;
  ui.hide.addEventListener('input', () => {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => {
      S.hide = ui.hide.value;
      changed({ timeline: false });
    }, 300);
  });
  ui.rec.addEventListener('change', () => {
    S.rec = ui.rec.checked;
    changed({ timeline: false });
  });
  ui.byproc.addEventListener('change', () => {
    Object.assign(S, { grp: ui.byproc.checked ? 'process' : '', z: [] });
    changed({ timeline: false });
  });
  ui.split.addEventListener('change', () => {
    S.split = ui.split.checked;
    changed({ timeline: false });
  });
  ui.exportFolded.addEventListener('click', exportFolded);
  ui.exportSvg.addEventListener('click', exportSvg);
  ui.fn.addEventListener('change', () => {
    if (ui.fn.value.trim()) openSandwich(ui.fn.value.trim());
  });
  document.addEventListener('keydown', (ev) => {
    const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement;
    if (ev.key === 'Escape' && !typing && S.view === 'flame') flame.zoomOut();
    if (ev.key === '/' && !typing) {
      ev.preventDefault();
      ui.search.focus();
    }
  });
  /* the vanished list is a popup: a click elsewhere closes it */
  document.addEventListener('click', (ev) => {
    if (ui.vanished.open && !ui.vanished.contains(ev.target)) ui.vanished.open = false;
  });
  window.addEventListener('hashchange', () => {
    readHash();
    brushSide = S.cmp === 'range' && !S.afrom ? 'a' : 'b';
    changed();
    openSide();
  });
  let resizeFrame = 0;
  window.addEventListener('resize', () => {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(() => {
      flame.requestDraw();
      sandwich.draw();
      timeline.requestDraw();
    });
  });
  for (const v of Object.keys(E.diff.PALETTES)) option(ui.palette, v, E.diff.PALETTES[v].label);

  /* sidetab.js: which side tab is shown ('' = app.js's view), kept in the URL */
  function setSide(name) {
    if (S.side === name) return;
    S.side = name;
    writeHash();
  }

  E.app = { state: () => S, selection: selB, flame, sandwich, timeline, setSide };
  start();
})(window.Ember = window.Ember || {});
