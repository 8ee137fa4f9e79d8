/*
 * sidetab.js - tabs that show a page of their own beside app.js's views.
 *
 * The Reports, Network and Requests tabs do not change app.js's state:
 * showing one hides app.js's views (and the other side tabs), marks its
 * tab selected, sets the hint line and loads its data; choosing any other
 * tab, or a change of the URL hash (a link, a brush), hides it and lets
 * app.js's view show again.  With pickers: true the tab also reloads when
 * the service, version or window picker changes while it is shown.
 *
 * The tab shown is kept in the URL (tab=NAME, through app.js's state), so
 * a reload or a link opens it again.
 *
 *   const t = E.sideTab({ name: 'reports', tab, view, hint: 'text', load: () => {...}, pickers: true });
 *   t.show(); t.hide(); t.shown();
 */
'use strict';

(function (E) {
  const $ = (id) => document.getElementById(id);
  const APP_VIEWS = ['view-flame', 'view-top', 'view-sandwich'];
  const PICKERS = ['service', 'version', 'range'];
  const all = [];
  E.sideTabs = E.sideTabs || {};

  /* Tell app.js which side tab is shown ('' = none), for the URL. */
  function remember(name) {
    if (E.app && E.app.setSide) E.app.setSide(name);
  }

  E.sideTab = function (opts) {
    let shown = false;
    const self = {
      shown: () => shown,
      show() {
        for (const other of all) if (other !== self) other.hide();
        shown = true;
        for (const id of APP_VIEWS.concat(['legend', 'crumbs', 'tools'])) if ($(id)) $(id).hidden = true;
        document.querySelector('main').classList.remove('split'); /* the flame graph's layout */
        for (const t of document.querySelectorAll('.tabs [role=tab]')) {
          const on = t === opts.tab;
          t.setAttribute('aria-selected', String(on));
          t.classList.toggle('active', on);
        }
        opts.view.hidden = false;
        remember(opts.name);
        if ($('hint')) $('hint').textContent = opts.hint;
        if ($('match')) $('match').textContent = '';
        opts.load();
      },
      hide() {
        if (!shown) return;
        shown = false;
        opts.view.hidden = true;
        opts.tab.classList.remove('active');
        opts.tab.setAttribute('aria-selected', 'false');
        remember('');
      },
    };
    all.push(self);
    E.sideTabs[opts.name] = self;
    opts.tab.addEventListener('click', self.show);
    /* app.js's tabs show their views themselves; this page just steps aside */
    for (const t of document.querySelectorAll('.tabs [data-view]')) t.addEventListener('click', self.hide, true);
    window.addEventListener('hashchange', () => {
      if (!shown) return;
      if (E.app && E.app.state && E.app.state().side === opts.name) return; /* still wanted */
      self.hide();
      if (E.app && E.app.state) {
        const el = $('view-' + E.app.state().view);
        if (el) el.hidden = false;
      }
    });
    if (opts.pickers) {
      /* after app.js has taken the new value in */
      for (const id of PICKERS) {
        const el = $(id);
        if (el) el.addEventListener('change', () => setTimeout(() => { if (shown) self.show(); }, 0));
      }
    }
    return self;
  };
})(window.Ember = window.Ember || {});
