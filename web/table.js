/*
 * table.js - the top functions table (/api/top).
 *
 * One row per function: self and total samples and shares, and with a
 * baseline the base shares and the changes (percentage points).  Clicking a
 * column head re-sorts on the server (sort=self|total|diff|diff_total,
 * order=asc|desc: the server keeps only the top rows, so sorting there is
 * what shows the right rows); clicking the sorted column again flips the
 * order, so that improvements (the most negative changes) can come first.
 * Clicking a function opens its sandwich view.  Long names end in an
 * ellipsis, with the full name, its file and line in the tooltip; kernel
 * functions carry a "kernel" tag.  The search box filters the rows shown.
 * Beside the flame graph, rows and frames are linked: hovering a row
 * outlines the function's frames, hovering a frame marks its row.
 */
'use strict';

(function (E) {
  const fmt = (n) => Number(n).toLocaleString('en-US');
  const pct = (f) => (f === null || f === undefined ? '' : (100 * f).toFixed(2) + '%');

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  /* A change with a small bar, red (or orange) for more, blue for less. */
  function diffCell(tr, f, scale, palette) {
    const td = cell(tr, f === null ? '' : E.diff.pp(f), 'num diff');
    if (f === null) return;
    td.classList.add(f > 0 ? 'more' : f < 0 ? 'less' : 'same');
    const bar = document.createElement('span');
    bar.className = 'dbar';
    bar.style.width = Math.min(100, (100 * Math.abs(f)) / (scale || 1)) + '%';
    bar.style.background = f > 0 ? palette[palette.length / 2 - 3] : palette[2];
    td.prepend(bar);
  }

  /*
   * Render data (the /api/top answer) into table.  opts: sort (current),
   * onSort(key), onPick(name), filter (RegExp or null), palette (diff colours);
   * linked views (the table beside the flame graph): onHover(name|null) when
   * the pointer enters or leaves a row, pickTitle (the name's tooltip line).
   */
  function render(table, data, opts) {
    const hasBase = data.base_total !== null && data.base_total !== undefined;
    const cols = [
      ['name', 'Function', null],
      ['self', 'Self', 'self'],
      ['self_share', 'Self %', 'self'],
      ['total', 'Total', 'total'],
      ['total_share', 'Total %', 'total'],
    ];
    if (hasBase) {
      cols.push(['base_self_share', 'A self %', null]);
      cols.push(['diff_self', '\u0394 self', 'diff']);
      cols.push(['diff_total', '\u0394 total', 'diff_total']);
    }
    const thead = document.createElement('thead');
    const hr = document.createElement('tr');
    for (const [key, label, sort] of cols) {
      const th = document.createElement('th');
      th.dataset.key = key;
      if (key !== 'name') th.className = 'num';
      if (sort) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'sort';
        b.textContent = label;
        const what = { diff: 'change of self share', diff_total: 'change of total share' }[sort] || sort;
        b.title = 'Sort by ' + what + ' (click again to reverse)';
        if (opts.sort === sort) {
          b.classList.add('active');
          b.textContent = label + (opts.asc ? ' \u25b4' : ' \u25be');
          th.setAttribute('aria-sort', opts.asc ? 'ascending' : 'descending');
        }
        b.addEventListener('click', () => opts.onSort(sort));
        th.appendChild(b);
      } else {
        th.textContent = label;
      }
      hr.appendChild(th);
    }
    thead.appendChild(hr);

    const scale = Math.max(1e-9, ...data.functions.map((f) => Math.abs(f.diff_self || 0)),
      ...data.functions.map((f) => Math.abs(f.diff_total || 0)));
    const tbody = document.createElement('tbody');
    let shown = 0;
    for (const f of data.functions) {
      if (opts.filter && !opts.filter.test(f.name)) continue;
      shown++;
      const tr = document.createElement('tr');
      tr.dataset.fn = f.name;
      const name = document.createElement('div');
      name.className = 'fnbox';
      cell(tr, '', 'fn').appendChild(name);
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'link';
      b.textContent = f.name;
      b.title = f.name + (f.file ? '\n' + f.file + (f.line ? ':' + f.line : '') : '') +
        (f.kernel ? '\nkernel function' : '') + '\n' + (opts.pickTitle || 'Click: callers and callees (sandwich view)');
      b.addEventListener('click', () => opts.onPick(f.name));
      name.appendChild(b);
      if (f.kernel) {
        const k = document.createElement('span');
        k.className = 'tag kernel';
        k.textContent = 'kernel';
        name.appendChild(k);
        tr.classList.add('kernel');
      }
      cell(tr, fmt(f.self), 'num');
      cell(tr, pct(f.self_share), 'num');
      cell(tr, fmt(f.total), 'num');
      cell(tr, pct(f.total_share), 'num');
      if (hasBase) {
        cell(tr, pct(f.base_self_share), 'num muted');
        diffCell(tr, f.diff_self, scale, opts.palette);
        diffCell(tr, f.diff_total, scale, opts.palette);
      }
      if (opts.onHover) {
        tr.addEventListener('mouseenter', () => opts.onHover(f.name));
        tr.addEventListener('mouseleave', () => opts.onHover(null));
      }
      tbody.appendChild(tr);
    }
    if (!shown) {
      const tr = document.createElement('tr');
      const td = cell(tr, data.functions.length ? 'No function matches the search.' : 'No samples.', 'muted');
      td.colSpan = cols.length;
      tbody.appendChild(tr);
    }
    table.replaceChildren(thead, tbody);
    return shown;
  }

  /*
   * Mark the row of function name with class cls ('linked': a frame of it
   * is hovered; 'picked': chosen), scrolled into view in its box; null
   * clears.  Returns whether the function has a row.
   */
  function markRow(table, name, cls) {
    for (const tr of table.querySelectorAll('tr.' + cls)) tr.classList.remove(cls);
    if (!name) return false;
    const tr = [...table.querySelectorAll('tbody tr[data-fn]')].find((r) => r.dataset.fn === name);
    if (!tr) return false;
    tr.classList.add(cls);
    /* scroll the table's own box only: the page stays where it is */
    const box = table.parentElement;
    if (box.scrollHeight > box.clientHeight) {
      const top = tr.offsetTop - table.tHead.offsetHeight;
      if (top < box.scrollTop) box.scrollTop = top;
      else if (tr.offsetTop + tr.offsetHeight > box.scrollTop + box.clientHeight) {
        box.scrollTop = tr.offsetTop + tr.offsetHeight - box.clientHeight;
      }
    }
    return true;
  }

  E.table = { render, markRow };
})(window.Ember = window.Ember || {});
