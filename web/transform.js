/*
 * transform.js - reshaping a call tree the way pprof and Pyroscope users
 * expect: focus on a function, hide frames, merge recursion; and the top
 * functions of a reshaped tree, so that the table follows the flame graph.
 *
 * Trees are the API's (/api/flamegraph: value and self per node;
 * /api/diff: a, b, a_self, b_self, delta, delta_self).  Every transform
 * builds a new tree and leaves the answer it was given untouched:
 *
 *  - hide (a regular expression): matching frames leave their stacks;
 *    their callees move up to their caller and their own samples become
 *    the caller's (self), so totals do not change;
 *  - merge recursion: a frame calling itself directly (f;f;f) becomes one
 *    frame (f), the inner ones' own samples its own;
 *  - focus (a function name): only the stacks through the function, cut
 *    at its outermost call, every call site merged into one subtree (the
 *    "focus" of pprof, the subtree of the sandwich's callees).
 *
 * sandwich() computes callers and callees of a function from a tree, so
 * that the sandwich works on a diff as well.
 *
 * Nodes merge by (name, kernel), as the API merges them.  In a diff the
 * changes of share (delta, delta_self) are computed again against the
 * sides' totals of the selection.
 */
'use strict';

(function (E) {
  /* The numeric fields of a tree: totals and selfs, plain or diff. */
  function fieldsOf(root) {
    return root && root.b !== undefined
      ? { totals: ['a', 'b'], selfs: ['a_self', 'b_self'] }
      : { totals: ['value'], selfs: ['self'] };
  }

  const keyOf = (n) => (n.kernel ? 'k:' : 'u:') + n.name;

  /* A copy of n without children (fields as given, children empty). */
  function shell(n, f) {
    const c = { name: n.name, children: [] };
    for (const k of ['file', 'line', 'kernel', 'inlined']) if (n[k] !== undefined) c[k] = n[k];
    for (const k of f.totals.concat(f.selfs)) c[k] = n[k] || 0;
    return c;
  }

  /*
   * A copy of the tree src in which children of the same key merge (their
   * samples summed) and children go through
   * the same loop, so the transforms apply all the way down.  lift(child,
   * parent, parentIsRoot) says whether a child is folded into its parent
   * (hidden or recursive) rather than kept.
   */
  function build(src, f, lift) {
    const out = shell(src, f);
    const index = new Map();
    /* explicit stack: stacks can be hundreds deep */
    const work = [[src, out, index]];
    while (work.length) {
      const [s, d, idx] = work.pop();
      const kids = (s.children || []).slice();
      while (kids.length) {
        const c = kids.pop();
        if (lift(c, d, d === out)) {
          /* folded into d: its own samples are d's, its callees d's callees */
          for (const k of f.selfs) d[k] += c[k] || 0;
          for (const g of c.children || []) kids.push(g);
          continue;
        }
        const key = keyOf(c);
        let m = idx.get(key);
        if (!m) {
          m = shell(c, f);
          for (const k of f.totals.concat(f.selfs)) m[k] = 0;
          m._index = new Map();
          idx.set(key, m);
          d.children.push(m);
        }
        for (const k of f.totals.concat(f.selfs)) m[k] += c[k] || 0;
        work.push([c, m, m._index]);
      }
    }
    strip(out);
    return out;
  }

  function strip(root) {
    const stack = [root];
    while (stack.length) {
      const n = stack.pop();
      delete n._index;
      for (const c of n.children) stack.push(c);
    }
  }

  /* The outermost nodes named name (their subtrees hold the nested ones). */
  function outermost(root, name) {
    const out = [];
    const stack = (root.children || []).slice();
    while (stack.length) {
      const n = stack.pop();
      if (n.name === name) out.push(n);
      else for (const c of n.children || []) stack.push(c);
    }
    return out;
  }

  /* Recompute a diff tree's changes of share against the sides' totals. */
  function reshare(root, totalA, totalB) {
    const stack = [root];
    while (stack.length) {
      const n = stack.pop();
      if (n !== root) {
        n.delta = (totalB ? n.b / totalB : 0) - (totalA ? n.a / totalA : 0);
        n.delta_self = (totalB ? n.b_self / totalB : 0) - (totalA ? n.a_self / totalA : 0);
      }
      for (const c of n.children) stack.push(c);
    }
  }

  /*
   * Apply opts {focus: name, hide: RegExp|null, rec: bool} to root.
   * totals {a, b} (diff) re-base the changes of share.  Returns root itself
   * when there is nothing to do.
   */
  function apply(root, opts, totals) {
    if (!root || !(opts.focus || opts.hide || opts.rec)) return root;
    const f = fieldsOf(root);
    const sameFrame = (c, d) => c.name === d.name && !!c.kernel === !!d.kernel;
    /* the root ("all") is no frame: nothing folds into it as recursion */
    let tree = build(root, f, (c, d, atRoot) => (opts.hide && opts.hide.test(c.name)) ||
      (opts.rec && !atRoot && sameFrame(c, d)));
    if (opts.focus) {
      const hits = outermost(tree, opts.focus);
      const holder = { name: tree.name, children: hits };
      for (const k of f.totals.concat(f.selfs)) holder[k] = 0;
      tree = build(holder, f, () => false);
      for (const k of f.totals) tree[k] = hits.reduce((s, h) => s + (h[k] || 0), 0);
    }
    if (f.totals.length === 2 && totals) reshare(tree, totals.a, totals.b);
    return tree;
  }

  /*
   * The sandwich of function fn computed from a tree, as /api/sandwich
   * computes it from stacks, so that it works on a diff tree too: over the
   * outermost calls of fn, callees = fn's subtrees merged (focus), callers =
   * the paths from fn up to the root, fn first (its nearest caller is its
   * child), each weighted by that call's samples; callers have no self.
   * totals {a, b} re-base a diff's changes of share.  Returns {callers,
   * callees}, trees rooted at fn (all zero when fn is not in the tree).
   */
  function sandwich(root, fn, totals) {
    const f = fieldsOf(root);
    const zero = (n) => {
      const z = shell(n, f);
      for (const k of f.totals.concat(f.selfs)) z[k] = 0;
      z._index = new Map();
      return z;
    };
    const callers = zero({ name: fn });
    const path = [];
    const stack = (root.children || []).map((c) => [c, false]);
    while (stack.length) {
      const [n, leaving] = stack.pop();
      if (leaving) {
        path.pop();
        continue;
      }
      if (n.name !== fn) {
        path.push(n);
        stack.push([n, true]);
        for (const c of n.children || []) stack.push([c, false]);
        continue;
      }
      /* an outermost call of fn: its samples up the path, nearest caller first */
      if (n.kernel !== undefined) callers.kernel = n.kernel;
      let cur = callers;
      for (const k of f.totals) cur[k] += n[k] || 0;
      for (let j = path.length - 1; j >= 0; j--) {
        const key = keyOf(path[j]);
        let c = cur._index.get(key);
        if (!c) {
          c = zero(path[j]);
          cur._index.set(key, c);
          cur.children.push(c);
        }
        for (const k of f.totals) c[k] += n[k] || 0;
        cur = c;
      }
    }
    strip(callers);
    const focused = apply(root, { focus: fn }, null);
    const callees = focused.children[0] || zero({ name: fn });
    delete callees._index;
    if (f.totals.length === 2 && totals) {
      reshare(callers, totals.a, totals.b);
      reshare(callees, totals.a, totals.b);
      for (const t of [callers, callees]) {
        t.delta = (totals.b ? t.b / totals.b : 0) - (totals.a ? t.a / totals.a : 0);
        t.delta_self = (totals.b ? t.b_self / totals.b : 0) - (totals.a ? t.a_self / totals.a : 0);
      }
    }
    return { callers, callees };
  }

  /*
   * The top functions of a tree, as /api/top answers them: self = samples
   * where the function is the leaf, total = samples whose stack holds it
   * (once per stack: only its outermost frame on a path counts), shares of
   * the selection's totals ({a, b} in a diff, {value} else).  sort: self,
   * total, diff (change of self share), diff_total; asc: smallest first.
   */
  function top(root, totals, sort, asc, limit) {
    const diff = root && root.b !== undefined;
    const fns = new Map();
    const onPath = new Map();
    const get = (n) => {
      let r = fns.get(n.name);
      if (!r) {
        r = { name: n.name, file: n.file || null, line: n.line || 0, kernel: !!n.kernel, self: 0, total: 0, aself: 0, atotal: 0 };
        fns.set(n.name, r);
      }
      return r;
    };
    /* depth-first with enter/leave events, to know the names on the path */
    const stack = root ? (root.children || []).map((c) => [c, false]) : [];
    while (stack.length) {
      const [n, leaving] = stack.pop();
      if (leaving) {
        onPath.set(n.name, onPath.get(n.name) - 1);
        continue;
      }
      const r = get(n);
      if (diff) {
        r.self += n.b_self || 0;
        r.aself += n.a_self || 0;
      } else {
        r.self += n.self || 0;
      }
      if (!onPath.get(n.name)) {
        r.total += diff ? n.b || 0 : n.value || 0;
        if (diff) r.atotal += n.a || 0;
      }
      onPath.set(n.name, (onPath.get(n.name) || 0) + 1);
      stack.push([n, true]);
      for (const c of n.children || []) stack.push([c, false]);
    }
    const NB = diff ? totals.b : totals.value;
    const NA = diff ? totals.a : 0;
    const share = (v, t) => (t > 0 ? v / t : 0);
    const rows = [...fns.values()].filter((r) => r.total > 0 || r.atotal > 0).map((r) => {
      const row = {
        name: r.name, file: r.file, line: r.line, kernel: r.kernel, self: r.self, total: r.total,
        self_share: share(r.self, NB), total_share: share(r.total, NB),
      };
      if (diff) {
        row.base_self_share = share(r.aself, NA);
        row.base_total_share = share(r.atotal, NA);
        row.diff_self = row.self_share - row.base_self_share;
        row.diff_total = row.total_share - row.base_total_share;
      }
      return row;
    });
    const key = { self: 'self', total: 'total', diff: 'diff_self', diff_total: 'diff_total' }[sort] || 'self';
    rows.sort((p, q) => (asc ? p[key] - q[key] : q[key] - p[key]) || (p.name < q.name ? -1 : p.name > q.name ? 1 : 0));
    return {
      total: NB, base_total: diff ? NA : null, functions_total: rows.length,
      functions: rows.slice(0, limit || 200),
    };
  }

  E.transform = { apply, sandwich, top, fieldsOf };
})(window.Ember = window.Ember || {});
