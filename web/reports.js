/*
 * reports.js - the Reports tab: the regression reports `ember report` saved.
 *
 * A tab of its own next to the views of app.js (sidetab.js): it lists GET
 * api/reports (newest first); each report opens as the self-contained page
 * api/reports/ID (its findings link back to this page's diff view), or as
 * JSON.
 */
'use strict';

(function (E) {
  const $ = (id) => document.getElementById(id);
  const tab = $('tab-reports');
  const view = $('view-reports');
  const table = $('reports');
  const empty = $('reports-empty');
  if (!tab || !view || !table) return;

  function day(ms) {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    const date = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate());
    return d.getHours() || d.getMinutes() ? date + ' ' + p(d.getHours()) + ':' + p(d.getMinutes()) : date;
  }

  function cell(row, text, cls) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text);
    else td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function link(href, text, title) {
    const a = document.createElement('a');
    a.href = href;
    a.textContent = text;
    a.title = title;
    a.target = '_blank';
    a.rel = 'noopener';
    return a;
  }

  function render(list) {
    table.replaceChildren();
    const head = document.createElement('tr');
    for (const h of ['Window', 'Baseline', 'Service', 'Summary', 'Regressions', 'Made', '']) {
      const th = document.createElement('th');
      th.textContent = h;
      if (h === 'Regressions') th.className = 'num';
      head.appendChild(th);
    }
    const thead = document.createElement('thead');
    thead.appendChild(head);
    const tbody = document.createElement('tbody');
    for (const r of list) {
      const tr = document.createElement('tr');
      const span = r.to - r.from === 86400e3 || (r.to - r.from > 82800e3 && r.to - r.from < 90000e3)
        ? day(r.from) : day(r.from) + ' \u2013 ' + day(r.to);
      cell(tr, link(r.url, span, 'Open report ' + r.id));
      cell(tr, r.baseline);
      cell(tr, r.service || 'all services');
      cell(tr, r.summary);
      cell(tr, String(r.regressions), 'num' + (r.regressions ? ' diff more' : ''));
      cell(tr, day(r.created));
      const links = document.createElement('span');
      links.append(link(r.url, 'open \u2197', 'The report as a page'), ' \u00b7 ',
        link(r.url + '?format=json', 'JSON', 'The report as JSON'));
      cell(tr, links);
      tbody.appendChild(tr);
    }
    table.append(thead, tbody);
    table.hidden = !list.length;
    empty.hidden = !!list.length;
  }

  async function load() {
    const status = $('status');
    try {
      const resp = await fetch('api/reports?limit=200', { cache: 'no-store' });
      const body = await resp.json();
      if (!resp.ok) throw new Error(body.error || 'HTTP ' + resp.status);
      if (!side.shown()) return;
      render(body.reports || []);
      if (status) {
        const n = (body.reports || []).length;
        status.textContent = n + ' saved report' + (n === 1 ? '' : 's');
        status.classList.remove('error');
      }
    } catch (e) {
      if (status) {
        status.textContent = 'Error: ' + e.message;
        status.classList.add('error');
      }
    }
  }

  const side = E.sideTab({
    tab, view, load,
    hint: 'Reports made by `ember report` (daily with --install-cron). ' +
      'Each finding in a report links to the diff view that shows it.',
  });

  E.reports = { show: side.show, hide: side.hide, load };
})(window.Ember = window.Ember || {});
