/*
 * diff.js - colours, legend and the vanished list of the diff view.
 *
 * A diff tree (/api/diff) carries per node its samples on each side (a, b)
 * and the change of its share, delta = b/NB - a/NA (and delta_self).  The
 * frame widths come from B (or from A in the negated view, where frames
 * that vanished in B are visible); the colour says how much the frame's
 * share changed: red (or orange in the colour-blind-safe palette) for more
 * in B, blue for less, on a symmetric scale rounded to a readable step that
 * the legend prints.  Shares rather than counts, so a version that simply
 * got more traffic shows no change.
 */
'use strict';

(function (E) {
  const STEPS = 6; /* colour steps on each side of "no change" */
  const NEUTRAL = STEPS;

  const PALETTES = {
    rb: { label: 'red / blue', less: [214, 72], more: [2, 74] },
    cb: { label: 'blue / orange (colour-blind)', less: [218, 62], more: [32, 92] },
  };

  /* 2*STEPS+1 colours: strongest "less" first, neutral in the middle. */
  function paletteFor(name) {
    const p = PALETTES[name] || PALETTES.rb;
    const hsl = [];
    for (let k = -STEPS; k <= STEPS; k++) {
      if (k === 0) {
        hsl.push([36, 14, 87]);
        continue;
      }
      const [h, s] = k < 0 ? p.less : p.more;
      const t = Math.abs(k) / STEPS;
      hsl.push([h, s, Math.round(86 - 38 * t)]);
    }
    return E.flamePalette.makePalette(hsl);
  }

  const NICE = [];
  for (const decade of [0.001, 0.01, 0.1]) for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8]) NICE.push(decade * m);
  NICE.push(1);

  /* The largest change in the tree, rounded up to a readable scale. */
  function scaleFor(root, field) {
    let max = 0;
    const stack = [root];
    while (stack.length) {
      const n = stack.pop();
      const d = Math.abs(n[field] || 0);
      if (d > max) max = d;
      for (const c of n.children || []) stack.push(c);
    }
    for (const s of NICE) if (max <= s) return s;
    return 1;
  }

  function step(delta, scale) {
    const t = Math.max(-1, Math.min(1, (delta || 0) / scale));
    return NEUTRAL + Math.round(t * STEPS);
  }

  /* colorOf for the renderer: by the change of total or self share. */
  function colorFn(field, scale) {
    return (n, match) => {
      const c = step(n[field], scale); /* the root has no delta: neutral */
      return match === 2 ? c + 2 * STEPS + 1 : c;
    };
  }

  function pp(f, digits) {
    const v = f * 100;
    const s = Math.abs(v).toFixed(digits === undefined ? 2 : digits);
    return (v > 0 ? '+' : v < 0 ? '\u2212' : '\u00b1') + s + ' pp';
  }

  /* Fill the legend's scale: "less in B  -S [swatches] +S  more in B". */
  function renderScale(el, palette, scale, field) {
    const span = (cls, text) => {
      const e = document.createElement('span');
      e.className = cls;
      e.textContent = text;
      return e;
    };
    const digits = scale < 0.01 ? 2 : scale < 0.1 ? 1 : 0;
    const bar = span('legend-bar', '');
    for (let k = 0; k <= 2 * STEPS; k++) {
      const sw = span('swatch', '');
      sw.style.background = palette[k];
      sw.title = k === NEUTRAL ? 'no change' : pp(((k - NEUTRAL) / STEPS) * scale);
      bar.appendChild(sw);
    }
    el.replaceChildren(
      span('legend-cap', field === 'delta_self' ? 'Change of self share' : 'Change of total share'),
      span('legend-end less', 'less in B'),
      span('legend-tick', pp(-scale, digits)),
      bar,
      span('legend-tick', pp(scale, digits)),
      span('legend-end more', 'more in B'));
  }

  /* The functions that vanished in B, each a button that finds it. */
  function renderVanished(details, list, onPick) {
    const summary = details.querySelector('summary');
    const ul = details.querySelector('ul');
    if (!details.dataset.placed) {
      /* the popup opens under the summary, moved left as far as it must to stay on screen */
      details.dataset.placed = '1';
      details.addEventListener('toggle', () => {
        ul.style.left = '0px';
        if (!details.open) return;
        const r = ul.getBoundingClientRect();
        const room = document.documentElement.clientWidth - 16;
        if (r.right > room) ul.style.left = Math.min(0, room - r.right) + 'px';
      });
    }
    ul.replaceChildren();
    summary.textContent = 'Vanished in B (' + list.length + ')';
    details.hidden = false;
    details.classList.toggle('none', list.length === 0);
    for (const v of list.slice(0, 200)) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'link';
      b.textContent = v.name;
      b.title = v.name + '\nShow it in the negated view (widths from A)';
      b.addEventListener('click', () => {
        details.open = false;
        onPick(v.name);
      });
      const s = document.createElement('span');
      s.className = 'muted';
      s.textContent = ' total ' + (100 * v.a_total_share).toFixed(2) + '% in A, self ' +
        (100 * v.a_self_share).toFixed(2) + '%';
      li.append(b, s);
      ul.appendChild(li);
    }
    if (!list.length) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = 'Every function of A is still in B.';
      ul.appendChild(li);
    }
  }

  E.diff = { PALETTES, paletteFor, scaleFor, colorFn, pp, renderScale, renderVanished };
})(window.Ember = window.Ember || {});
