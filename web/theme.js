/*
 * theme.js - dark or light colours.
 *
 * By default the page follows the system (prefers-color-scheme, in
 * style.css); the header's theme button cycles auto -> dark -> light and
 * the choice is kept in localStorage.  Loaded in <head>, before the body is
 * drawn, so that a dark page never flashes light.
 */
'use strict';

(function (E) {
  const KEY = 'ember-theme';
  const ORDER = ['auto', 'dark', 'light'];

  function stored() {
    try {
      const v = localStorage.getItem(KEY);
      return ORDER.includes(v) ? v : 'auto';
    } catch (e) {
      return 'auto';
    }
  }

  function apply(mode) {
    if (mode === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = mode;
    const b = document.getElementById('theme');
    if (b) b.textContent = '\u25d0 ' + mode;
  }

  /* Is the page dark now (the choice, or the system's)? For canvas colours. */
  function dark() {
    const mode = stored();
    if (mode !== 'auto') return mode === 'dark';
    return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  }

  apply(stored());
  document.addEventListener('DOMContentLoaded', () => {
    apply(stored());
    document.getElementById('theme').addEventListener('click', () => {
      const next = ORDER[(ORDER.indexOf(stored()) + 1) % ORDER.length];
      try {
        localStorage.setItem(KEY, next);
      } catch (e) { /* private mode: for this page only */ }
      apply(next);
      window.dispatchEvent(new Event('resize')); /* canvases redraw */
    });
  });

  E.theme = { dark };
})(window.Ember = window.Ember || {});
