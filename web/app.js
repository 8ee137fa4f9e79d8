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
 */
'use strict';

(function (E) {
  const RANGES = { '15m': 15 * 60e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, all: 0 };
  const DEFAULTS = {
    svc: '', ver: '', cmp: '', r: '24h', from: 0, to: 0, afrom: 0, ato: 0, view: 'flame', ep: '',
    q: '', z: [], fn: '', sort: '', pal: 'rb', by: 'delta', neg: false,
  };
  const VIEWS = ['flame', 'top', 'sandwich'];
  const STEPS = [10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400];

  const $ = (id) => document.getElementById(id);
  const ui = {
    service: $('service'), version: $('version'), base: $('base'), range: $('range'),
    refresh: $('refresh'), pprof: $('pprof'), pprofBase: $('pprof-base'),
    timeline: $('timeline'), tlRange: $('tl-range'), tlClear: $('tl-clear'), tlKey: $('tl-key'),
    brushSide: $('brush-side'), tabs: document.querySelectorAll('.tabs [data-view]'),
    search: $('search'), legend: $('legend'), scale: $('scale'), palette: $('palette'),
    colorBy: $('colorby'), negated: $('negated'), vanished: $('vanished'),
    crumbs: $('crumbs'), status: $('status'), match: $('match'), empty: $('empty'),
    flame: $('flame'), top: $('top'), fn: $('fn'), fnList: $('fn-list'),
    hint: $('hint'),
  };

  const fmt = (n) => Number(n).toLocaleString('en-US');
  const pct = (v, of) => (of > 0 ? ((100 * v) / of).toFixed(2) : '0.00') + '%';

  let S = Object.assign({}, DEFAULTS);
  let services = [];
  let brushSide = 'b';
  let flameData = null;     /* the last /api/flamegraph or /api/diff answer */
  let diffOn = false;       /* flameData is a diff */
  let diffScale = 0.01;
  let topData = null;

  /* ---- state <-> URL ---- */

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const s = Object.assign({}, DEFAULTS);
    s.svc = p.get('s') || '';
    s.ver = p.get('v') || '';
    s.cmp = p.get('cmp') || '';
    s.ep = p.get('ep') || '';
    s.r = p.get('r') in RANGES ? p.get('r') : DEFAULTS.r;
    for (const k of ['from', 'to', 'afrom', 'ato']) s[k] = Math.max(0, parseInt(p.get(k), 10) || 0);
    s.view = VIEWS.includes(p.get('view')) ? p.get('view') : 'flame';
    s.q = p.get('q') || '';
    s.z = p.getAll('z');
    s.fn = p.get('fn') || '';
    s.sort = ['self', 'total', 'diff'].includes(p.get('sort')) ? p.get('sort') : '';
    s.pal = p.get('pal') in E.diff.PALETTES ? p.get('pal') : 'rb';
    s.by = p.get('by') === 'self' ? 'delta_self' : 'delta';
    s.neg = p.get('neg') === '1';
    S = s;
  }

  function writeHash() {
    const p = new URLSearchParams();
    const put = (k, v) => {
      if (v) p.set(k, String(v));
    };
    put('s', S.svc);
    put('v', S.ver);
    put('cmp', S.cmp);
    put('ep', S.ep);
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
    if (S.pal !== 'rb') p.set('pal', S.pal);
    if (S.by === 'delta_self') p.set('by', 'self');
    if (S.neg) p.set('neg', '1');
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
    return { service: S.svc, version: S.ver, from: w.from, to: w.to, endpoint: S.ep };
  }

  /* The baseline, or null when not comparing. */
  function selA() {
    if (S.cmp.startsWith('v:')) {
      const w = S.from ? { from: S.from, to: S.to } : windowRange();
      return { service: S.svc, version: S.cmp.slice(2), from: w.from, to: w.to, endpoint: S.ep };
    }
    if (S.cmp === 'range' && S.afrom) return { service: S.svc, version: S.ver, from: S.afrom, to: S.ato, endpoint: S.ep };
    return null;
  }

  function sideLabel(sel) {
    if (!sel) return '';
    let s = (sel.service || 'all services') + ' ' + (sel.version || 'all versions');
    if (sel.endpoint) s += ' \u00b7 serving ' + sel.endpoint;
    if (S.cmp === 'range' && sel.from) s += ' ' + E.timeLabel(sel.from, 86400e3) + '\u2013' + E.timeLabel(sel.to || Date.now(), 86400e3);
    return s;
  }

  /* ---- status lines ---- */

  function setStatus(text, isError) {
    ui.status.textContent = text;
    ui.status.classList.toggle('error', !!isError);
  }

  function searchRe() {
    const q = S.q.trim();
    if (!q) return null;
    try {
      return new RegExp(q, 'i');
    } catch (e) {
      return new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    }
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

  function fillPickers() {
    ui.service.replaceChildren();
    if (!services.length) option(ui.service, '', 'no data yet');
    for (const s of services) option(ui.service, s.service, s.service + ' \u00b7 ' + fmt(s.samples) + ' samples');
    ui.service.value = S.svc;
    const svc = service();
    const versions = svc ? svc.versions || [] : [];
    ui.version.replaceChildren();
    option(ui.version, '', 'all versions');
    for (const v of versions) option(ui.version, v.version, v.version + ' \u00b7 ' + fmt(v.samples) + ' samples').title = versionSpan(v);
    if (S.ver && !versions.some((v) => v.version === S.ver)) option(ui.version, S.ver, S.ver + ' (no samples)');
    ui.version.value = S.ver;
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
    ui.search.value = S.q;
    ui.palette.value = S.pal;
    ui.colorBy.value = S.by;
    ui.negated.checked = S.neg;
  }

  async function loadServices() {
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
    const sides = [{ label: 'B ' + (S.ver || 'all versions'), sel: Object.assign({}, base, { version: S.ver }), color: '#e8590c' }];
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

  function tooltipLines(n, graph) {
    const lines = [['name', n.name]];
    if (n.file) lines.push(['loc', n.file + (n.line ? ':' + n.line : '')]);
    const tags = [n.kernel && 'kernel', n.inlined && 'inlined'].filter(Boolean);
    if (tags.length) lines.push(['tags', tags.join(' \u00b7 ')]);
    if (n.a !== undefined && n.b !== undefined && diffOn && graph === flame) {
      const NA = flameData.a_total;
      const NB = flameData.b_total;
      lines.push(['num', 'B: ' + fmt(n.b) + ' samples (' + pct(n.b, NB) + '), self ' + fmt(n.b_self || 0) + ' (' + pct(n.b_self || 0, NB) + ')']);
      lines.push(['num a', 'A: ' + fmt(n.a) + ' samples (' + pct(n.a, NA) + '), self ' + fmt(n.a_self || 0) + ' (' + pct(n.a_self || 0, NA) + ')']);
      if (n.delta !== undefined) {
        lines.push(['', 'change: ' + E.diff.pp(n.delta) + ' total, ' + E.diff.pp(n.delta_self || 0) + ' self']);
      }
      return lines;
    }
    /* in the sandwich, shares are of the whole selection and of the function */
    const inSandwich = graph !== flame && sandwich.data;
    const all = inSandwich ? sandwich.allSamples : graph.totalValue;
    lines.push(['num', 'total: ' + fmt(n.value) + ' samples, ' + pct(n.value, all) + ' of all']);
    if (inSandwich) lines.push(['', pct(n.value, graph.totalValue) + ' of ' + graph.root.name]);
    /* a caller's "self" would only say where stacks end: not shown */
    if (n.self !== undefined && graph !== sandwich.callers) {
      lines.push(['', 'self: ' + fmt(n.self) + ' (' + pct(n.self, all) + ')']);
    }
    const focus = graph.focusNode;
    if (!inSandwich && focus && focus !== graph.root && n !== focus && n.value <= focus.value) {
      lines.push(['', pct(n.value, focus.value) + ' of ' + focus.name]);
    }
    return lines;
  }

  function hoverHandler(graphRef) {
    return (n, ev) => {
      if (!n) E.tooltip.hide();
      else E.tooltip.show(tooltipLines(n, graphRef()), ev);
    };
  }

  const flame = new E.FlameGraph(ui.flame, {
    onHover: hoverHandler(() => flame),
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
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'chip';
      const name = flame.focusNode.name;
      b.textContent = 'callers & callees';
      b.title = 'Sandwich view of ' + name;
      b.addEventListener('click', () => openSandwich(name));
      ui.crumbs.appendChild(b);
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
        if (!r.frames && !(diffOn && matchedValue(flameData.root, re, (n) => n.a))) {
          ui.match.textContent = 'No frame matches';
        } else if (diffOn) {
          const b = matchedValue(flameData.root, re, (n) => n.b);
          const a = matchedValue(flameData.root, re, (n) => n.a);
          ui.match.textContent = 'Matched: ' + pct(b, flameData.b_total) + ' of B, ' +
            pct(a, flameData.a_total) + ' of A (' + E.diff.pp(b / (flameData.b_total || 1) - a / (flameData.a_total || 1)) + ')';
        } else {
          ui.match.textContent = 'Matched: ' + pct(r.value, flame.totalValue) + ' of samples (' +
            fmt(r.value) + ' samples in ' + fmt(r.frames) + (r.frames === 1 ? ' frame)' : ' frames)');
        }
      }
    } else if (S.view === 'top' && topData) {
      const shown = E.table.render(ui.top, topData, tableOpts());
      if (re) ui.match.textContent = shown + ' of ' + topData.functions.length + ' functions match';
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
      diffScale = E.diff.scaleFor(flameData.root, S.by);
      const pal = diffPalette();
      flame.setTree(flameData.root, S.neg ? (n) => n.a : (n) => n.b, E.diff.colorFn(S.by, diffScale), pal);
      E.diff.renderScale(ui.scale, pal, diffScale, S.by);
    } else {
      flame.setTree(flameData.root, (n) => n.value);
    }
    flame.zoomToPath(S.z);
    const total = diffOn ? (S.neg ? flameData.a_total : flameData.b_total) : flameData.total;
    ui.empty.hidden = total > 0;
    ui.empty.textContent = diffOn && S.neg ? 'No samples in A.' : 'No samples for this selection.';
    renderCrumbs();
    applySearch();
  }

  async function loadFlame() {
    const tick = E.api.latest('flame');
    const a = selA();
    const b = selB();
    const data = a ? await E.api.diff(a, b) : await E.api.flamegraph(b);
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
        fmt(data.a_total) + ' samples' + (S.neg ? '  \u00b7  negated: widths from A' : ''));
    } else {
      setStatus(sideLabel(b) + ' \u00b7 ' + fmt(data.total) + ' samples' +
        (data.truncated ? ' \u00b7 frames under 0.001% omitted' : ''));
    }
  }

  /* ---- top functions ---- */

  function tableOpts() {
    return {
      sort: effectiveSort(),
      filter: searchRe(),
      palette: diffPalette(),
      onSort: (k) => {
        S.sort = k;
        changed({ timeline: false });
      },
      onPick: (name) => openSandwich(name),
    };
  }

  function effectiveSort() {
    if (S.sort === 'diff' && !selA()) return 'self';
    return S.sort || (selA() ? 'diff' : 'self');
  }

  async function loadTop() {
    const tick = E.api.latest('top');
    const a = selA();
    const data = await E.api.top(selB(), a, effectiveSort(), 200);
    if (!tick()) return;
    topData = data;
    diffOn = !!a;
    applySearch();
    setStatus(sideLabel(selB()) + ' \u00b7 ' + fmt(data.total) + ' samples' +
      (a ? '  \u00b7  vs A ' + sideLabel(a) + ': ' + fmt(data.base_total || 0) + ' samples' : ''));
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
    const data = await E.api.sandwich(S.fn, b);
    if (!tick()) return;
    sandwich.set(data);
    applySearch();
    setStatus(sideLabel(b) + ' \u00b7 ' + fmt(sandwich.allSamples || 0) + ' samples' + (selA() ? ' (the sandwich shows B)' : ''));
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
    for (const v of VIEWS) $('view-' + v).hidden = v !== S.view;
    const a = selA();
    ui.legend.hidden = !(a && S.view === 'flame');
    ui.pprofBase.hidden = !a;
    ui.crumbs.hidden = S.view !== 'flame';
    ui.hint.textContent = {
      flame: 'Hover a frame for details, click to zoom in, Esc or the breadcrumbs to zoom out, right-click for its callers and callees.' +
        (a ? ' Widths come from B; colours show the change of share against A.' : ''),
      top: 'Click a column to sort, a function for its callers and callees. The search box filters the rows.',
      sandwich: 'Callers above the function, callees below it. Right-click a frame to centre the sandwich on it.',
    }[S.view];
  }

  function updateLinks() {
    const b = selB();
    const a = selA();
    ui.pprof.href = E.api.pprofUrl(b);
    ui.pprof.download = 'ember-' + (S.svc || 'all') + (S.ver ? '-' + S.ver : '') + '.pb.gz';
    if (a) {
      ui.pprofBase.href = E.api.pprofUrl(a);
      ui.pprofBase.download = 'ember-' + (S.svc || 'all') + '-base' + (a.version ? '-' + a.version : '') + '.pb.gz';
    }
  }

  async function loadView() {
    try {
      if (S.view === 'flame') await loadFlame();
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
    ui.match.textContent = '';
    if (what.timeline !== false) loadTimeline().catch((e) => setStatus('Error: ' + e.message, true));
    return loadView();
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
    await changed();
    document.body.dataset.ready = '1';
  }

  /* ---- wiring ---- */

  ui.service.addEventListener('change', () => {
    Object.assign(S, { svc: ui.service.value, ver: '', cmp: S.cmp === 'range' ? 'range' : '', z: [], fn: '', ep: '' });
    changed();
  });
  ui.version.addEventListener('change', () => {
    S.ver = ui.version.value;
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
  ui.range.addEventListener('change', () => {
    Object.assign(S, { r: ui.range.value, from: 0, to: 0, afrom: 0, ato: 0, ep: '' });
    changed();
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
  });
  ui.colorBy.addEventListener('change', () => {
    S.by = ui.colorBy.value;
    writeHash();
    layoutFlame();
  });
  ui.negated.addEventListener('change', () => {
    S.neg = ui.negated.checked;
    writeHash();
    if (S.view === 'flame') loadView();
  });
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

  E.app = { state: () => S, selection: selB, flame, sandwich, timeline };
  start();
})(window.Ember = window.Ember || {});
