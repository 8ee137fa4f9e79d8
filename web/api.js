/*
 * api.js - talking to Ember's JSON API (documented in src/server/api.c).
 *
 * A selection is {service, version, from, to, endpoint, pid} (empty fields
 * select everything); two-sided endpoints take the same fields prefixed "a." and
 * "b." (/api/diff) or plain and "base." (/api/top).  Requests that a newer
 * one replaced are dropped by the caller through the sequence numbers kept
 * here, so a slow answer never overwrites a fresh one.
 */
'use strict';

(function (E) {
  /* Add a selection's parameters to p, each name prefixed. */
  function addSelection(p, sel, prefix) {
    if (!sel) return p;
    if (sel.service) p.set(prefix + 'service', sel.service);
    if (sel.version) p.set(prefix + 'version', sel.version);
    if (sel.from) p.set(prefix + 'from', String(Math.floor(sel.from)));
    if (sel.to) p.set(prefix + 'to', String(Math.ceil(sel.to)));
    if (sel.endpoint) p.set(prefix + 'endpoint', sel.endpoint);
    if (sel.pid) p.set(prefix + 'pid', String(sel.pid));
    if (sel.type && sel.type !== 'cpu') p.set(prefix + 'type', sel.type);
    return p;
  }

  function url(path, params) {
    const q = params.toString();
    return 'api/' + path + (q ? '?' + q : '');
  }

  async function getJSON(path, params) {
    const u = url(path, params || new URLSearchParams());
    const resp = await fetch(u, { cache: 'no-store' });
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) throw new Error((body && body.error) || path + ': HTTP ' + resp.status);
    if (!body) throw new Error(path + ': the answer is not JSON');
    return body;
  }

  /* Latest-wins guard: const tick = latest('flame'); ...; if (!tick()) return; */
  const seqs = {};
  function latest(key) {
    const mine = (seqs[key] = (seqs[key] || 0) + 1);
    return () => seqs[key] === mine;
  }

  E.api = {
    addSelection,
    url,
    latest,
    services: () => getJSON('services'),
    targets: () => getJSON('targets'),
    /* group 'process': every stack under its process ("comm-PID") */
    flamegraph: (sel, group) => {
      const p = addSelection(new URLSearchParams(), sel, '');
      if (group) p.set('group', group);
      return getJSON('flamegraph', p);
    },
    diff: (a, b) => {
      const p = addSelection(new URLSearchParams(), a, 'a.');
      return getJSON('diff', addSelection(p, b, 'b.'));
    },
    top: (sel, base, sort, limit, asc) => {
      const p = addSelection(new URLSearchParams(), sel, '');
      if (base) addSelection(p, base, 'base.');
      if (sort) p.set('sort', sort);
      if (asc) p.set('order', 'asc');
      p.set('limit', String(limit || 200));
      return getJSON('top', p);
    },
    sandwich: (fn, sel) => {
      const p = new URLSearchParams();
      p.set('function', fn);
      return getJSON('sandwich', addSelection(p, sel, ''));
    },
    timeline: (sel, step) => {
      const p = addSelection(new URLSearchParams(), sel, '');
      if (step) p.set('step', String(step));
      return getJSON('timeline', p);
    },
    pprofUrl: (sel) => url('pprof', addSelection(new URLSearchParams(), sel, '')),
  };
})(window.Ember = window.Ember || {});
