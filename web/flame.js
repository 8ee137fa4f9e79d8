/*
 * flame.js - Ember's flame graph page.
 *
 * Loads /api/targets for the target picker and /api/flamegraph for the
 * selected target and time range, then draws an icicle graph (root on top)
 * on a canvas: one row per stack depth, each frame as wide as its share of
 * the samples.  Hovering shows a tooltip, clicking zooms into a frame (the
 * breadcrumb zooms back out), the search box highlights matching frames and
 * sums their share.  The selection lives in the URL hash so a view can be
 * bookmarked or shared.
 *
 * Canvas instead of DOM nodes because a graph holds up to 200000 frames;
 * only frames at least a fraction of a pixel wide are drawn.
 */
'use strict';

(function () {
  const ROW = 18;             /* px per stack level */
  const FONT = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
  const TEXT_PAD = 4;
  const MIN_PX = 0.35;        /* narrower frames (and their children) are skipped */
  const AUTO_MS = 10000;
  const RANGES = { '15m': 15 * 60e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, all: 0 };

  const el = (id) => document.getElementById(id);
  const ui = {
    target: el('target'), range: el('range'), search: el('search'), refresh: el('refresh'),
    auto: el('auto'), pprof: el('pprof'), crumbs: el('crumbs'), status: el('status'),
    match: el('match'), chart: el('chart'), canvas: el('flame'), empty: el('empty'),
    tooltip: el('tooltip'),
  };
  const ctx = ui.canvas.getContext('2d');

  let root = null;        /* the tree from /api/flamegraph, with layout fields added */
  let focus = null;       /* the zoomed-in node (root when not zoomed) */
  let hovered = null;
  let maxDepth = 0;
  let charWidth = 7.2;
  let searchRe = null;
  let autoTimer = null;
  let loadSeq = 0;        /* drops answers to requests that a newer one replaced */
  let hashTarget = '';    /* target from the URL, applied once the list arrives */

  /* ---- helpers ---- */

  const fmt = (n) => Number(n).toLocaleString('en-US');
  const pct = (v, of) => (of > 0 ? (100 * v / of).toFixed(v === of ? 0 : 2) : '0') + '%';

  function nameHash(s) {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return h >>> 0;
  }

  function selectionQuery() {
    const p = new URLSearchParams();
    if (ui.target.value) p.set('target', ui.target.value);
    const span = RANGES[ui.range.value];
    if (span) p.set('from', String(Date.now() - span));
    return p.toString();
  }

  function apiUrl(path) {
    const q = selectionQuery();
    return q ? path + '?' + q : path;
  }

  async function getJSON(url) {
    const resp = await fetch(url, { cache: 'no-store' });
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) throw new Error((body && body.error) || resp.status + ' ' + resp.statusText);
    if (!body) throw new Error('bad JSON from ' + url);
    return body;
  }

  function setStatus(text, isError) {
    ui.status.textContent = text;
    ui.status.classList.toggle('error', !!isError);
  }

  /* ---- URL hash: target, range, search ---- */

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.has('range') && p.get('range') in RANGES) ui.range.value = p.get('range');
    if (p.has('q')) ui.search.value = p.get('q');
    hashTarget = p.get('target') || '';
  }

  function writeHash() {
    const p = new URLSearchParams();
    if (ui.target.value) p.set('target', ui.target.value);
    p.set('range', ui.range.value);
    if (ui.search.value) p.set('q', ui.search.value);
    history.replaceState(null, '', '#' + p.toString());
  }

  /* ---- targets ---- */

  function targetLabel(t) {
    let s = t.service || t.comm || 'target ' + t.id;
    if (t.version) s += ' ' + t.version;
    const where = [];
    if (t.comm && t.comm !== t.service) where.push(t.comm);
    if (t.pid) where.push('pid ' + t.pid);
    if (t.host) where.push(t.host);
    if (where.length) s += ' (' + where.join(', ') + ')';
    return s + ' \u2014 ' + fmt(t.samples) + ' samples';
  }

  async function loadTargets() {
    const data = await getJSON('api/targets');
    const want = hashTarget || ui.target.value;
    while (ui.target.options.length > 1) ui.target.remove(1);
    for (const t of data.targets || []) {
      const o = document.createElement('option');
      o.value = String(t.id);
      o.textContent = targetLabel(t);
      ui.target.appendChild(o);
    }
    if (want && [...ui.target.options].some((o) => o.value === want)) {
      ui.target.value = want;
    } else if (want) {
      /* keep showing a target that fell out of the list rather than switch silently */
      const o = document.createElement('option');
      o.value = want;
      o.textContent = 'target ' + want + ' (not listed)';
      ui.target.appendChild(o);
      ui.target.value = want;
    }
    hashTarget = '';
  }

  /* ---- the tree ---- */

  /* Give every node x (left edge, in samples), depth and parent. */
  function layout(tree) {
    maxDepth = 0;
    tree.x = 0;
    tree.depth = 0;
    tree.parent = null;
    const stack = [tree];
    while (stack.length) {
      const n = stack.pop();
      if (n.depth > maxDepth) maxDepth = n.depth;
      let x = n.x;
      for (const c of n.children || []) {
        c.parent = n;
        c.depth = n.depth + 1;
        c.x = x;
        x += c.value;
        stack.push(c);
      }
    }
  }

  function pathOf(n) {
    const path = [];
    for (; n && n.parent; n = n.parent) path.unshift({ name: n.name, kernel: n.kernel });
    return path;
  }

  /* Find the node at path in the (new) tree, or the deepest one that exists. */
  function nodeAtPath(tree, path) {
    let n = tree;
    for (const step of path) {
      const next = (n.children || []).find((c) => c.name === step.name && c.kernel === step.kernel);
      if (!next) break;
      n = next;
    }
    return n;
  }

  /* ---- search ---- */

  function applySearch() {
    const q = ui.search.value.trim();
    searchRe = null;
    if (q) {
      try {
        searchRe = new RegExp(q, 'i');
      } catch (e) {
        searchRe = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
      }
    }
    ui.match.textContent = '';
    if (!root) return;
    /* share = samples under the outermost matching frames (nested matches count once) */
    let matched = 0;
    let frames = 0;
    const stack = [[root, false]];
    while (stack.length) {
      const [n, inside] = stack.pop();
      n.match = !!searchRe && n !== root && searchRe.test(n.name);
      if (n.match) {
        frames++;
        if (!inside) matched += n.value;
      }
      for (const c of n.children || []) stack.push([c, inside || n.match]);
    }
    if (searchRe) {
      ui.match.textContent = frames
        ? 'Matched: ' + pct(matched, root.value) + ' (' + fmt(matched) + ' samples in ' +
          fmt(frames) + ' frames)'
        : 'No frame matches';
    }
  }

  /* ---- drawing ---- */

  function frameColor(n, ancestor) {
    if (n === root) return ancestor ? '#e6e1da' : '#d9d2c8';
    if (searchRe) {
      if (n.match) return 'hsl(288, 62%, ' + (ancestor ? 76 : 64) + '%)';
      return 'hsl(30, 8%, ' + (ancestor ? 90 : 84) + '%)';
    }
    if (n._h === undefined) n._h = nameHash(n.name);
    const h = n._h;
    let hue;
    let sat;
    let light;
    if (n.kernel) {
      hue = 200 + (h % 28);
      sat = 58;
      light = 70 + ((h >>> 8) % 8);
    } else if (n.name === '[unknown]' || /\+0x[0-9a-f]+$/.test(n.name)) {
      hue = 30;
      sat = 10;
      light = 72 + ((h >>> 8) % 8);
    } else {
      hue = 6 + (h % 40);
      sat = 72 + ((h >>> 8) % 18);
      light = 58 + ((h >>> 16) % 10);
    }
    if (ancestor) light = Math.min(light + 14, 92);
    return 'hsl(' + hue + ', ' + sat + '%, ' + light + '%)';
  }

  function fitLabel(name, px) {
    const max = Math.floor((px - 2 * TEXT_PAD) / charWidth);
    if (max < 3) return '';
    return name.length <= max ? name : name.slice(0, max - 1) + '\u2026';
  }

  function draw() {
    const width = ui.chart.clientWidth;
    const dpr = window.devicePixelRatio || 1;
    const depth = root ? maxDepth + 1 : 0;
    const height = Math.max(depth * ROW, 1);

    if (ui.canvas.width !== Math.round(width * dpr) || ui.canvas.height !== Math.round(height * dpr)) {
      ui.canvas.width = Math.round(width * dpr);
      ui.canvas.height = Math.round(height * dpr);
      ui.canvas.style.width = width + 'px';
      ui.canvas.style.height = height + 'px';
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!root || !focus || focus.value <= 0) return;

    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    charWidth = ctx.measureText('abcdefghijklmnopqrstuvwxyz').width / 26 || charWidth;

    const scale = width / focus.value;
    const x0 = focus.x;
    const stack = [root];
    while (stack.length) {
      const n = stack.pop();
      const px = (n.x - x0) * scale;
      const pw = n.value * scale;
      if (pw < MIN_PX || px + pw <= 0 || px >= width) continue;
      const left = Math.max(px, 0);
      const right = Math.min(px + pw, width);
      const y = n.depth * ROW;
      /* frames above the focus that are still in view are its ancestors */
      ctx.fillStyle = frameColor(n, n.depth < focus.depth);
      ctx.fillRect(left, y, Math.max(right - left - (pw > 2 ? 1 : 0), MIN_PX), ROW - 1);
      if (n === hovered) {
        ctx.strokeStyle = '#1f1b18';
        ctx.lineWidth = 1;
        ctx.strokeRect(left + 0.5, y + 0.5, Math.max(right - left - 2, 1), ROW - 2);
      }
      const label = fitLabel(n === root ? 'all' : n.name, right - left);
      if (label) {
        ctx.fillStyle = n.kernel ? '#0b2f4a' : '#24180f';
        ctx.fillText(label, left + TEXT_PAD, y + ROW / 2);
      }
      const kids = n.children || [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]);
    }
  }

  /* ---- interaction ---- */

  function nodeAt(px, py) {
    if (!root || !focus) return null;
    const depth = Math.floor(py / ROW);
    const width = ui.chart.clientWidth;
    const xs = focus.x + (px / width) * focus.value;
    if (depth < 0 || depth > maxDepth) return null;
    let n = root;
    while (n.depth < depth) {
      let next = null;
      for (const c of n.children || []) {
        if (xs >= c.x && xs < c.x + c.value) {
          next = c;
          break;
        }
      }
      if (!next) return null;
      n = next;
    }
    return n.value * (width / focus.value) >= MIN_PX ? n : null;
  }

  function addLine(parent, cls, text) {
    const d = document.createElement('div');
    if (cls) d.className = cls;
    d.textContent = text;
    parent.appendChild(d);
    return d;
  }

  function showTooltip(n, ev) {
    const tip = ui.tooltip;
    tip.replaceChildren();
    addLine(tip, 'name', n === root ? 'all' : n.name);
    if (n.file) addLine(tip, 'loc', n.file + (n.line ? ':' + n.line : ''));
    if (n.kernel || n.inlined) {
      const tags = addLine(tip, '', '');
      for (const [on, cls, text] of [[n.kernel, 'tag', 'kernel'], [n.inlined, 'tag inl', 'inlined']]) {
        if (!on) continue;
        const s = document.createElement('span');
        s.className = cls;
        s.textContent = text;
        tags.appendChild(s);
      }
    }
    addLine(tip, 'num', fmt(n.value) + ' samples, ' + pct(n.value, root.value) + ' of total');
    if (n !== root) addLine(tip, '', 'self: ' + fmt(n.self) + ' (' + pct(n.self, root.value) + ')');
    if (focus !== root && n !== focus && n.depth > focus.depth) {
      addLine(tip, '', pct(n.value, focus.value) + ' of ' + focus.name);
    }
    tip.hidden = false;
    const pad = 14;
    const r = tip.getBoundingClientRect();
    let x = ev.clientX + pad;
    let y = ev.clientY + pad;
    if (x + r.width > window.innerWidth - 4) x = Math.max(4, ev.clientX - r.width - pad);
    if (y + r.height > window.innerHeight - 4) y = Math.max(4, ev.clientY - r.height - pad);
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }

  function hideTooltip() {
    ui.tooltip.hidden = true;
    if (hovered) {
      hovered = null;
      draw();
    }
  }

  function onMove(ev) {
    const r = ui.canvas.getBoundingClientRect();
    const n = nodeAt(ev.clientX - r.left, ev.clientY - r.top);
    if (!n) {
      hideTooltip();
      return;
    }
    if (n !== hovered) {
      hovered = n;
      draw();
    }
    showTooltip(n, ev);
  }

  function zoomTo(n) {
    focus = n || root;
    renderCrumbs();
    draw();
  }

  function renderCrumbs() {
    ui.crumbs.replaceChildren();
    if (!root) return;
    const chain = [];
    for (let n = focus; n; n = n.parent) chain.unshift(n);
    chain.forEach((n, i) => {
      if (i) {
        const sep = document.createElement('span');
        sep.className = 'sep';
        sep.textContent = '\u203a';
        ui.crumbs.appendChild(sep);
      }
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = n === root ? 'all' : n.name;
      b.title = n === root ? 'Reset zoom' : n.name;
      b.disabled = n === focus;
      b.addEventListener('click', () => zoomTo(n));
      ui.crumbs.appendChild(b);
    });
  }

  /* ---- loading ---- */

  function describe(data) {
    const parts = [fmt(data.total) + ' samples'];
    const range = ui.range.options[ui.range.selectedIndex].textContent;
    parts.push(range);
    if (data.truncated) parts.push('frames under 0.001% or beyond ' + fmt(data.nodes) + ' omitted');
    return parts.join(' \u00b7 ');
  }

  async function loadGraph() {
    const seq = ++loadSeq;
    const keepPath = focus ? pathOf(focus) : [];
    const data = await getJSON(apiUrl('api/flamegraph'));
    if (seq !== loadSeq) return; /* a newer selection is on its way */
    root = data.root;
    layout(root);
    focus = nodeAtPath(root, keepPath);
    hovered = null;
    applySearch();
    ui.empty.hidden = data.total > 0;
    setStatus(describe(data), false);
    renderCrumbs();
    draw();
  }

  async function load() {
    writeHash();
    ui.pprof.href = apiUrl('api/pprof');
    try {
      await loadTargets();
      await loadGraph();
    } catch (e) {
      setStatus('Error: ' + e.message, true);
    }
  }

  function setAuto(on) {
    ui.auto.setAttribute('aria-pressed', String(on));
    ui.auto.textContent = 'Auto-refresh: ' + (on ? 'on' : 'off');
    clearInterval(autoTimer);
    autoTimer = on ? setInterval(load, AUTO_MS) : null;
  }

  /* ---- wiring ---- */

  let searchTimer = null;
  ui.search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      applySearch();
      writeHash();
      draw();
    }, 120);
  });
  ui.target.addEventListener('change', () => {
    focus = null; /* another target: start from the top */
    load();
  });
  ui.range.addEventListener('change', load);
  ui.refresh.addEventListener('click', load);
  ui.auto.addEventListener('click', () => setAuto(ui.auto.getAttribute('aria-pressed') !== 'true'));
  /* the range ends "now": refresh the link's time window when it is used */
  ui.pprof.addEventListener('click', () => {
    ui.pprof.href = apiUrl('api/pprof');
  });
  ui.canvas.addEventListener('mousemove', onMove);
  ui.canvas.addEventListener('mouseleave', hideTooltip);
  ui.canvas.addEventListener('click', (ev) => {
    const r = ui.canvas.getBoundingClientRect();
    const n = nodeAt(ev.clientX - r.left, ev.clientY - r.top);
    if (n) zoomTo(n);
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.activeElement !== ui.search && focus && focus.parent) {
      zoomTo(focus.parent);
    }
  });
  let resizeFrame = 0;
  window.addEventListener('resize', () => {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(draw);
  });

  readHash();
  load();
})();
