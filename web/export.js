/*
 * export.js - the flame graph on screen as a file: folded stacks or SVG.
 *
 * Folded text is the format of /api/folded and of flamegraph.pl, speedscope
 * and inferno: one line per stack, root first, frames joined by ';', kernel
 * frames suffixed "_[k]", a space and the samples; lines sorted, so that the
 * export of an unchanged view is byte for byte what /api/folded answers for
 * the same selection.  It holds what the view shows: the stacks through the
 * zoomed frame (whole, from the root), after focus, hide and merged
 * recursion (transform.js), widths from B in a diff (from A when negated).
 *
 * The SVG draws the frames the canvas draws (FlameGraph.visible), one
 * <rect> each, with the palette's colours, the labels that fit and a
 * <title> per frame (name and samples) that viewers show on hover.
 */
'use strict';

(function (E) {
  /* A name as /api/folded writes it: ';' would split the frame, line breaks the record. */
  const foldedName = (n) => (n.name.replace(/[\r\n]/g, '').replace(/;/g, ':') || '[unknown]') + (n.kernel ? '_[k]' : '');

  /*
   * The folded text of graph's zoomed subtree; selfOf(node) gives a node's
   * own samples.  Stacks are whole (from below the root "all").
   */
  function folded(graph, selfOf) {
    if (!graph.n) return '';
    const lines = [];
    const f = graph.focus;
    /* the path of names to node i, built once per node from its parent's */
    const paths = new Map();
    const pathOf = (i) => {
      if (i <= 0) return '';
      let p = paths.get(i);
      if (p === undefined) {
        const up = pathOf(graph.parent[i]);
        p = (up ? up + ';' : '') + foldedName(graph.nodes[i]);
        paths.set(i, p);
      }
      return p;
    };
    for (let a = graph.parent[f]; a > 0; a = graph.parent[a]) pathOf(a);
    for (let i = Math.max(f, 1); i < graph.end[f]; i++) {
      const v = selfOf(graph.nodes[i]);
      if (v > 0) lines.push([pathOf(i), v]);
    }
    /* byte order of the paths (as /api/folded sorts them); equal paths merge */
    lines.sort((p, q) => (p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : 0));
    let out = '';
    for (let k = 0; k < lines.length;) {
      let v = 0;
      let j = k;
      for (; j < lines.length && lines[j][0] === lines[k][0]; j++) v += lines[j][1];
      out += lines[k][0] + ' ' + v + '\n';
      k = j;
    }
    return out;
  }

  const xml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

  /*
   * The SVG of graph as drawn at its current width; valueText(node) gives
   * the line under the name in each frame's title.
   */
  function svg(graph, valueText, title) {
    const width = Math.max(1, Math.round(graph.canvas.parentElement.clientWidth));
    const row = E.FLAME_ROW;
    const height = Math.max(1, graph.rows() * row);
    const parts = [];
    graph.visible(width, (i, left, y, pw, wpx, c) => {
      const n = graph.nodes[i];
      const label = pw > 3 * graph.charWidth ? graph.fit(n.name, pw) : '';
      parts.push('<g><title>' + xml(n.name + (n.kernel ? ' [kernel]' : '') + '\n' + valueText(n)) + '</title>' +
        '<rect x="' + left.toFixed(2) + '" y="' + y + '" width="' + wpx.toFixed(2) + '" height="' + (row - 1) +
        '" fill="' + graph.palette[c] + '"/>' +
        (label ? '<text x="' + (left + 4).toFixed(2) + '" y="' + (y + row / 2) + '">' + xml(label) + '</text>' : '') +
        '</g>');
    });
    return '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<svg xmlns="http://www.w3.org/2000/svg" width="' + width + '" height="' + (height + 24) +
      '" viewBox="0 0 ' + width + ' ' + (height + 24) + '">\n' +
      /* presentation attributes, no <style>: every viewer draws them, no CSP blocks them */
      '<g font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, DejaVu Sans Mono, monospace" font-size="12" ' +
      'dominant-baseline="middle">\n' +
      '<text x="4" y="12" fill="#6f6860">' + xml(title || '') + '</text>\n' +
      '<g transform="translate(0,24)" fill="#221a12">\n' + parts.join('\n') + '\n</g>\n</g>\n</svg>\n';
  }

  /* Offer text as a file named name (a blob URL the browser downloads). */
  function download(text, name, type) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  E.exporter = { folded, svg, download, foldedName };
})(window.Ember = window.Ember || {});
