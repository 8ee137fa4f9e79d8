/*
 * proftype.js - the profile type: CPU (samples of running threads) or
 * off-CPU (time threads spent blocked, in nanoseconds).
 *
 * The selector sits with the other pickers; the type travels in the URL
 * hash ("t=offcpu") and in every selection (type=offcpu, a.type/b.type in
 * diffs).  Off-CPU values read as durations in the tooltip and status
 * lines, CPU values as sample counts.
 */
(function (E) {
  const TYPES = { cpu: 'CPU (samples)', offcpu: 'Off-CPU (time blocked)' };

  /* ns -> "1.23 s", "45.6 ms", "789 µs", "12 ns" */
  function duration(ns) {
    const v = Number(ns);
    if (v >= 1e9) return (v / 1e9).toFixed(v >= 1e11 ? 0 : 2) + ' s';
    if (v >= 1e6) return (v / 1e6).toFixed(1) + ' ms';
    if (v >= 1e3) return (v / 1e3).toFixed(0) + ' \u00b5s';
    return v.toFixed(0) + ' ns';
  }

  E.profileType = {
    TYPES,
    /* A known type name, else 'cpu'. */
    parse(t) {
      return t in TYPES ? t : 'cpu';
    },
    /* How a value of this type reads: "1,234 samples" or "1.23 s off-CPU". */
    value(n, type) {
      if (type === 'offcpu') return duration(n) + ' off-CPU';
      return Number(n).toLocaleString('en-US') + ' samples';
    },
    /* Fill the selector and call onChange(type) when the user picks one. */
    bind(select, type, onChange) {
      select.replaceChildren();
      for (const [k, label] of Object.entries(TYPES)) {
        const o = document.createElement('option');
        o.value = k;
        o.textContent = label;
        select.appendChild(o);
      }
      select.value = type;
      select.addEventListener('change', () => onChange(select.value));
    },
  };
})(window.Ember = window.Ember || {});
