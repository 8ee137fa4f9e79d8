/*
 * sandwich.js - callers and callees of one function (/api/sandwich).
 *
 * Two flame graphs share the function's width: its callers drawn upwards
 * (the function at the bottom, the root-most callers on top) and its
 * callees drawn downwards from it, so every path through the function is
 * one column read top to bottom.  Recursion and calls from many places are
 * merged by the API, the way a flame graph merges stacks.  In diff mode the
 * two trees come from the diff's tree (transform.sandwich) and are coloured
 * by the change of share, as the diff flame graph is.
 */
'use strict';

(function (E) {
  class Sandwich {
    /*
     * els: {callers, callees: canvases, title: element}; opts: hover(graph)
     * returns the hover handler of that graph, onContext(node) for right-click.
     */
    constructor(els, opts) {
      this.els = els;
      this.callers = new E.FlameGraph(els.callers, { inverted: true, onContext: opts.onContext });
      this.callees = new E.FlameGraph(els.callees, { onContext: opts.onContext });
      this.callers.opts.onHover = opts.hover(this.callers);
      this.callees.opts.onHover = opts.hover(this.callees);
      this.data = null;
    }

    set(data) {
      this.data = data;
      this.diff = false;
      const callers = data.callers || { name: data.function, value: 0, children: [] };
      const callees = data.callees || { name: data.function, value: 0, self: 0, children: [] };
      /* the API's callers tree has no self: a caller's own samples are its value */
      this.callers.setTree(callers, (n) => n.value);
      this.callees.setTree(callees, (n) => n.value);
      const fmt = (n) => Number(n).toLocaleString('en-US');
      const pct = (f) => (100 * f).toFixed(2) + '%';
      /* samples of the whole selection ("samples"; older answers: "total") */
      this.allSamples = data.samples !== undefined ? data.samples : data.total;
      const all = this.allSamples;
      this.els.title.replaceChildren();
      const name = document.createElement('code');
      name.textContent = data.function;
      const stats = document.createElement('span');
      stats.className = 'muted';
      stats.textContent = ' total ' + pct(all ? (callees.value || 0) / all : 0) + ' (' +
        fmt(callees.value || 0) + ' samples), self ' + pct(all ? (data.self || 0) / all : 0) +
        ' (' + fmt(data.self || 0) + ') of ' + fmt(all || 0) + ' samples';
      this.els.title.append(name, stats);
    }

    /*
     * The sandwich of a diff (transform.sandwich over /api/diff's tree):
     * data {function, callers, callees, a_total, b_total}; widths from B
     * (from A when negated), colours by the change of share.
     */
    setDiff(data, opts) {
      this.data = data;
      this.diff = true;
      const valueOf = opts.negated ? (n) => n.a : (n) => n.b;
      const scale = Math.max(E.diff.scaleFor(data.callers, opts.by), E.diff.scaleFor(data.callees, opts.by));
      const color = E.diff.colorFn(opts.by, scale);
      this.callers.setTree(data.callers, valueOf, color, opts.palette);
      this.callees.setTree(data.callees, valueOf, color, opts.palette);
      this.scale = scale;
      this.allSamples = opts.negated ? data.a_total : data.b_total;
      const c = data.callees;
      const pct = (v, t) => (t ? ((100 * v) / t).toFixed(2) : '0.00') + '%';
      this.els.title.replaceChildren();
      const name = document.createElement('code');
      name.textContent = data.function;
      const stats = document.createElement('span');
      stats.className = 'muted';
      const fmt = (n) => Number(n).toLocaleString('en-US');
      stats.textContent = ' total ' + pct(c.b, data.b_total) + ' of B (' + fmt(c.b) + ' samples), ' +
        pct(c.a, data.a_total) + ' of A (' + fmt(c.a) + '), change ' + E.diff.pp(c.delta || 0) +
        '; self ' + pct(c.b_self, data.b_total) + ' of B, ' + pct(c.a_self, data.a_total) + ' of A (' +
        E.diff.pp(c.delta_self || 0) + ')';
      this.els.title.append(name, stats);
    }

    setSearch(re) {
      this.callers.setSearch(re);
      this.callees.setSearch(re);
    }

    draw() {
      this.callers.requestDraw();
      this.callees.requestDraw();
    }
  }

  E.Sandwich = Sandwich;
})(window.Ember = window.Ember || {});
