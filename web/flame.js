/*
 * flame.js - the icicle flame-graph renderer (canvas), used by every view.
 *
 * A tree from the API ({name, children, ...} with a value per node) is
 * flattened once into typed arrays in depth-first pre-order: node i's
 * subtree is the index range [i, end[i]), so zooming is choosing a range and
 * skipping a frame too narrow to draw skips its whole subtree in one step.
 * Drawing batches rectangles by colour (one path per palette entry) and
 * labels only frames wide enough for text, so a 100k-node graph draws in a
 * few milliseconds; redraws are coalesced with requestAnimationFrame.
 *
 * The renderer knows nothing about the API: the caller passes the value of
 * a node (b in a diff, a in the negated diff), a colour function returning
 * an index into a palette, and callbacks for hover, zoom and right-click.
 * Root on top; `inverted` draws the root at the bottom (sandwich callers).
 */
'use strict';

(function (E) {
  const ROW = 18;             /* px per stack level */
  const FONT = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
  const TEXT_PAD = 4;
  const MIN_PX = 0.35;        /* narrower frames (and their subtrees) are skipped */

  /* FNV-1a of a string: stable colours per function name. */
  function nameHash(s) {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return h >>> 0;
  }

  /*
   * The plain flame graph's palette: warm tones for user code, blues for
   * kernel frames, greys for unknown frames, one highlight for search
   * matches.  Entry k + FADED is entry k washed out (frames above the zoom
   * focus, and frames that do not match a search).
   */
  const WARM = 24;
  const KERN = 8;
  const GREY = 4;
  const HIGHLIGHT = WARM + KERN + GREY;
  const PLAIN = [];
  for (let i = 0; i < WARM; i++) PLAIN.push([8 + (i * 37) % 40, 74 + (i * 7) % 16, 58 + (i * 5) % 10]);
  for (let i = 0; i < KERN; i++) PLAIN.push([198 + (i * 5) % 28, 58, 68 + (i * 3) % 8]);
  for (let i = 0; i < GREY; i++) PLAIN.push([30, 10, 72 + i * 2]);
  PLAIN.push([288, 62, 60]);

  /* Turn [hue, sat, light] triples into CSS colours, plus their faded twins. */
  function makePalette(hsl) {
    const out = hsl.map(([h, s, l]) => 'hsl(' + h + ',' + s + '%,' + l + '%)');
    for (const [h, s, l] of hsl) {
      out.push('hsl(' + h + ',' + Math.round(s * 0.35) + '%,' + Math.min(93, Math.round(l + (100 - l) * 0.6)) + '%)');
    }
    return out;
  }
  const PLAIN_PALETTE = makePalette(PLAIN);

  /* match: 0 no search, 1 matches the search, 2 a search that it misses */
  function plainColor(node, match) {
    if (match === 1) return HIGHLIGHT;
    if (node._c === undefined) {
      const h = nameHash(node.name);
      if (node.kernel) node._c = WARM + (h % KERN);
      else if (node.name === '[unknown]' || /\+0x[0-9a-f]+$/.test(node.name)) node._c = WARM + KERN + (h % GREY);
      else node._c = h % WARM;
    }
    return match === 2 ? node._c + PLAIN.length : node._c;
  }

  class FlameGraph {
    /*
     * opts: inverted (bool), onHover(node|null, ev), onZoom(node),
     * onContext(node, ev) for right-click.
     */
    constructor(canvas, opts) {
      this.canvas = canvas;
      this.ctx = canvas.getContext('2d');
      this.opts = opts || {};
      this.palette = PLAIN_PALETTE;
      this.colorOf = plainColor;
      this.n = 0;
      this.focus = 0;
      this.hover = -1;
      this.match = null;
      this.mark = '';      /* frames of this function are outlined (linked views) */
      this.pending = 0;
      this.charWidth = 7.2;
      this.lastStats = { drawn: 0, ms: 0 };
      canvas.addEventListener('mousemove', (ev) => this.onMove(ev));
      canvas.addEventListener('mouseleave', (ev) => this.setHover(-1, ev));
      canvas.addEventListener('click', (ev) => {
        const i = this.nodeAtEvent(ev);
        if (i >= 0) this.zoom(i);
      });
      canvas.addEventListener('contextmenu', (ev) => {
        const i = this.nodeAtEvent(ev);
        if (i >= 0 && this.opts.onContext) {
          ev.preventDefault();
          this.opts.onContext(this.nodes[i], ev);
        }
      });
    }

    /*
     * Lay a tree out: valueOf(node) gives its width in samples (nodes worth
     * 0 are left out with their subtrees).  colorOf(node, match) returns
     * an index into palette (whose second half holds the faded twins);
     * match is 0 without a search, 1 for a match, 2 for a miss.
     */
    setTree(root, valueOf, colorOf, palette) {
      valueOf = valueOf || ((n) => n.value);
      this.colorOf = colorOf || plainColor;
      this.palette = palette || PLAIN_PALETTE;
      /* first pass: how many nodes are drawn at all, to size the arrays */
      let n = 0;
      const count = root && valueOf(root) > 0 ? [root] : [];
      while (count.length) {
        const node = count.pop();
        n++;
        for (const c of node.children || []) if (valueOf(c) > 0) count.push(c);
      }
      const nodes = new Array(n);
      const x = new Float64Array(n);
      const w = new Float64Array(n);
      const depth = new Uint16Array(n);
      const parent = new Int32Array(n);
      /*
       * Pre-order walk with an explicit stack (stacks can be hundreds
       * deep): parallel stacks of node, left edge, parent index and depth.
       * Children are pushed last to first so the first pops first.
       */
      const sNode = n ? [root] : [];
      const sX = [0];
      const sParent = [-1];
      const sDepth = [0];
      let i = 0;
      while (sNode.length) {
        const node = sNode.pop();
        const left = sX.pop();
        parent[i] = sParent.pop();
        const d = sDepth.pop();
        nodes[i] = node;
        x[i] = left;
        w[i] = valueOf(node);
        depth[i] = d;
        /*
         * siblings largest first by the value that sets their widths, then
         * by name: the flame graph and the diff (widths from B, or from A
         * when negated) order the same frames the same way
         */
        const kids = node.children && node.children.length > 1
          ? node.children.slice().sort((p, q) => valueOf(q) - valueOf(p) || (p.name < q.name ? -1 : p.name > q.name ? 1 : 0))
          : node.children;
        if (kids && kids.length) {
          let right = left;
          for (let k = 0; k < kids.length; k++) {
            const cw = valueOf(kids[k]);
            if (cw > 0) right += cw;
          }
          for (let k = kids.length - 1; k >= 0; k--) {
            const cw = valueOf(kids[k]);
            if (cw <= 0) continue;
            right -= cw;
            sNode.push(kids[k]);
            sX.push(right);
            sParent.push(i);
            sDepth.push(d + 1);
          }
        }
        i++;
      }
      this.n = n;
      this.nodes = nodes;
      this.x = x;
      this.w = w;
      this.depth = depth;
      this.parent = parent;
      /* end[i] and the deepest level below i, from the leaves up */
      this.end = new Int32Array(n);
      this.maxDepth = Uint16Array.from(depth);
      for (let k = n - 1; k >= 0; k--) {
        if (this.end[k] === 0) this.end[k] = k + 1;
        const p = parent[k];
        if (p >= 0) {
          if (this.end[p] < this.end[k]) this.end[p] = this.end[k];
          if (this.maxDepth[p] < this.maxDepth[k]) this.maxDepth[p] = this.maxDepth[k];
        }
      }
      this.color = new Uint16Array(n);
      for (let k = 0; k < n; k++) this.color[k] = this.colorOf(nodes[k], 0);
      this.focus = 0;
      this.hover = -1;
      this.match = null;
      this.requestDraw();
      return n;
    }

    /* ---- zoom ---- */

    get root() { return this.n ? this.nodes[0] : null; }
    get focusNode() { return this.n ? this.nodes[this.focus] : null; }
    get totalValue() { return this.n ? this.w[0] : 0; }

    zoom(i) {
      if (i < 0 || i >= this.n) i = 0;
      this.focus = i;
      this.requestDraw();
      if (this.opts.onZoom) this.opts.onZoom(this.nodes[i]);
    }

    zoomOut() {
      if (this.n && this.parent[this.focus] >= 0) this.zoom(this.parent[this.focus]);
    }

    /* Root-to-focus chain of nodes (for breadcrumbs). */
    chain(i) {
      const out = [];
      for (let k = i === undefined ? this.focus : i; k >= 0; k = this.parent[k]) out.unshift(k);
      return out;
    }

    /* Names from below the root to the focus: what the URL stores. */
    zoomPath() {
      return this.chain().slice(1).map((k) => this.nodes[k].name);
    }

    /* Zoom to the deepest node matching names (missing steps stop the walk). */
    zoomToPath(path) {
      let i = 0;
      for (const name of path || []) {
        let found = -1;
        for (let c = i + 1; c < this.end[i]; c = this.end[c]) {
          if (this.nodes[c].name === name) {
            found = c;
            break;
          }
        }
        if (found < 0) break;
        i = found;
      }
      this.focus = i < this.n ? i : 0;
      this.requestDraw();
    }

    zoomIndexOf(node) {
      return this.nodes ? this.nodes.indexOf(node) : -1;
    }

    /* ---- search ---- */

    /*
     * Highlight frames whose name matches re (null clears).  Returns the
     * samples under the outermost matching frames (nested matches count
     * once) and the number of matching frames.
     */
    setSearch(re) {
      this.match = null;
      let value = 0;
      let frames = 0;
      if (re && this.n) {
        const m = (this.match = new Uint8Array(this.n)); /* the root ("all") never matches */
        for (let i = 1; i < this.n; i++) {
          if (re.test(this.nodes[i].name)) {
            m[i] = 1;
            frames++;
          }
        }
        for (let i = 1; i < this.n;) {
          if (m[i]) {
            value += this.w[i];
            i = this.end[i];
          } else {
            i++;
          }
        }
      }
      this.recolor(this.colorOf, this.palette);
      return { value, frames };
    }

    /* New colours with the same layout (palette or colour scale changed). */
    recolor(colorOf, palette) {
      this.colorOf = colorOf;
      this.palette = palette;
      const m = this.match;
      for (let i = 0; i < this.n; i++) this.color[i] = colorOf(this.nodes[i], m ? (m[i] ? 1 : 2) : 0);
      this.requestDraw();
    }

    /* Outline every frame of function name ('' clears): a row of a linked table is hovered. */
    setMark(name) {
      if ((name || '') === this.mark) return;
      this.mark = name || '';
      this.requestDraw();
    }

    /* ---- drawing ---- */

    requestDraw() {
      if (!this.pending) {
        this.pending = requestAnimationFrame(() => {
          this.pending = 0;
          this.draw();
        });
      }
    }

    rows() {
      return this.n ? this.maxDepth[this.focus] + 1 : 0;
    }

    rowY(depth, rows) {
      return (this.opts.inverted ? rows - 1 - depth : depth) * ROW;
    }

    draw() {
      const t0 = performance.now();
      const canvas = this.canvas;
      const width = canvas.parentElement.clientWidth;
      const dpr = window.devicePixelRatio || 1;
      const rows = this.rows();
      const height = Math.max(rows * ROW, 1);
      if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
        canvas.width = Math.round(width * dpr);
        canvas.height = Math.round(height * dpr);
        canvas.style.width = width + 'px';
        canvas.style.height = height + 'px';
      }
      const ctx = this.ctx;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, height);
      if (!this.n || width <= 0) return;
      ctx.font = FONT;
      ctx.textBaseline = 'middle';
      this.charWidth = ctx.measureText('abcdefghijklmnopqrstuvwxyz').width / 26 || this.charWidth;

      const rects = this.palette.map(() => []);
      const labels = [];
      const marked = [];
      let drawn = 0;
      this.visible(width, (i, left, y, pw, wpx, c) => {
        rects[c].push(left, y, wpx, ROW - 1);
        if (pw > 3 * this.charWidth) labels.push(i, left, y, pw);
        if (this.mark && this.nodes[i].name === this.mark) marked.push(left, y, wpx);
        drawn++;
      });
      const f = this.focus;
      const scale = width / this.w[f];
      const x0 = this.x[f];
      for (let c = 0; c < rects.length; c++) {
        const r = rects[c];
        if (!r.length) continue;
        ctx.fillStyle = this.palette[c];
        ctx.beginPath();
        for (let k = 0; k < r.length; k += 4) ctx.rect(r[k], r[k + 1], r[k + 2], r[k + 3]);
        ctx.fill();
      }
      ctx.fillStyle = '#221a12';
      for (let k = 0; k < labels.length; k += 4) {
        const i = labels[k];
        const text = this.fit(this.nodes[i].name, labels[k + 3]);
        if (text) ctx.fillText(text, labels[k + 1] + TEXT_PAD, labels[k + 2] + ROW / 2);
      }
      /* the function picked in a linked view: every frame of it outlined */
      ctx.strokeStyle = '#7048e8';
      ctx.lineWidth = 2;
      for (let k = 0; k < marked.length; k += 3) {
        ctx.strokeRect(marked[k] + 1, marked[k + 1] + 1, Math.max(marked[k + 2] - 2, 1), ROW - 3);
      }
      if (this.hover >= 0 && this.hover < this.n) this.outline(this.hover, rows, width, scale, x0);
      this.lastStats = { drawn, marked: marked.length / 3, ms: performance.now() - t0 };
    }

    /*
     * Call put(i, left, y, pw, wpx, colour) for every frame drawn at this
     * width: the focus's ancestors across the whole width, washed out, then
     * the focus's subtree, skipping frames (and subtrees) under MIN_PX.
     * pw is the frame's width, wpx the rectangle's (a gap of 1 px between
     * wide frames), colour an index into the palette.  The canvas and the
     * SVG export (export.js) draw the same frames through this.
     */
    visible(width, put) {
      if (!this.n || width <= 0) return;
      const rows = this.rows();
      const nPal = this.palette.length / 2;
      const f = this.focus;
      const scale = width / this.w[f];
      const x0 = this.x[f];
      const one = (i, left, pw, fade) => {
        const c = fade && this.color[i] < nPal ? this.color[i] + nPal : this.color[i];
        put(i, left, this.rowY(this.depth[i], rows), pw, pw > 3 ? pw - 1 : Math.max(pw, MIN_PX), c);
      };
      for (let a = this.parent[f]; a >= 0; a = this.parent[a]) one(a, 0, width, true);
      for (let i = f; i < this.end[f];) {
        const pw = this.w[i] * scale;
        if (pw < MIN_PX) {
          i = this.end[i];
          continue;
        }
        one(i, (this.x[i] - x0) * scale, pw, false);
        i++;
      }
    }

    outline(i, rows, width, scale, x0) {
      const f = this.focus;
      const inside = i >= f && i < this.end[f];
      const left = inside ? (this.x[i] - x0) * scale : 0;
      const pw = inside ? this.w[i] * scale : width;
      const ctx = this.ctx;
      ctx.strokeStyle = '#1f1b18';
      ctx.lineWidth = 1.5;
      ctx.strokeRect(left + 0.75, this.rowY(this.depth[i], rows) + 0.75,
        Math.max(pw - 2.5, 1), ROW - 2.5);
    }

    fit(name, px) {
      const max = Math.floor((px - 2 * TEXT_PAD) / this.charWidth);
      if (max < 3) return '';
      return name.length <= max ? name : name.slice(0, max - 1) + '\u2026';
    }

    /* ---- hit testing ---- */

    nodeAtEvent(ev) {
      const r = this.canvas.getBoundingClientRect();
      return this.nodeAt(ev.clientX - r.left, ev.clientY - r.top, r.width);
    }

    nodeAt(px, py, width) {
      if (!this.n) return -1;
      const rows = this.rows();
      let row = Math.floor(py / ROW);
      if (row < 0 || row >= rows) return -1;
      const depth = this.opts.inverted ? rows - 1 - row : row;
      const f = this.focus;
      if (depth < this.depth[f]) {
        let a = f;
        while (this.depth[a] > depth) a = this.parent[a];
        return a;
      }
      const xs = this.x[f] + (px / width) * this.w[f];
      let i = f;
      while (this.depth[i] < depth) {
        let next = -1;
        for (let c = i + 1; c < this.end[i]; c = this.end[c]) {
          if (xs >= this.x[c] && xs < this.x[c] + this.w[c]) {
            next = c;
            break;
          }
        }
        if (next < 0) return -1;
        i = next;
      }
      return this.w[i] * (width / this.w[f]) >= MIN_PX ? i : -1;
    }

    onMove(ev) {
      this.setHover(this.nodeAtEvent(ev), ev);
    }

    setHover(i, ev) {
      if (i !== this.hover) {
        this.hover = i;
        this.requestDraw();
      }
      if (this.opts.onHover) this.opts.onHover(i >= 0 ? this.nodes[i] : null, ev);
    }
  }

  /* ---- the shared tooltip ---- */

  const tooltip = {
    el: null,
    /* lines: [[className, text], ...] */
    show(lines, ev) {
      const tip = this.el || (this.el = document.getElementById('tooltip'));
      tip.replaceChildren();
      for (const [cls, text] of lines) {
        const d = document.createElement('div');
        if (cls) d.className = cls;
        d.textContent = text;
        tip.appendChild(d);
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
    },
    hide() {
      if (this.el) this.el.hidden = true;
    },
  };

  E.FlameGraph = FlameGraph;
  E.tooltip = tooltip;
  E.flamePalette = { plain: PLAIN_PALETTE, plainColor, makePalette, nameHash };
  E.FLAME_ROW = ROW;
})(window.Ember = window.Ember || {});
