/*
 * render_bench.js - how long the flame-graph renderer takes on 100k nodes.
 *
 *   node tests/web/render_bench.js [NODES]      (not a test: prints figures)
 *
 * Builds a synthetic tree shaped like the API's /api/flamegraph answer
 * (deterministic pseudo-random fan-out, depth up to 40, NODES nodes,
 * default 100000) inside Debian's Chromium, loads it into web/flame.js on a
 * 1300 px canvas and times, as the median of 5 runs: JSON.parse of the
 * answer, layout (setTree), the first full draw, a redraw after zooming
 * into a child of the root, and a search over every name.  Goal for
 * parse + layout + draw: <= 500 ms.
 */
'use strict';

const path = require('path');
const { missing, launch } = require('./browser.js');

const NODES = parseInt(process.argv[2], 10) || 100000;
const GOAL_MS = 500;

/* Runs in the page: returns the timings of one run. */
function benchInPage(nodes) {
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  /* grow a tree breadth-first until it holds `nodes` nodes */
  const root = { name: 'all', value: 0, self: 0, children: [] };
  const queue = [[root, 0]];
  let count = 1;
  while (count < nodes && queue.length) {
    const [n, depth] = queue.shift();
    const fan = depth < 2 ? 12 : 1 + Math.floor(rand() * 4);
    for (let k = 0; k < fan && count < nodes; k++) {
      const c = { name: 'ns' + (count % 97) + '::function_' + count + '(int, std::string const&)',
        value: 0, self: 0, file: 'src/file_' + (count % 300) + '.cc', line: count % 1000,
        kernel: count % 23 === 0, inlined: false, children: [] };
      n.children.push(c);
      count++;
      if (depth < 40) queue.push([c, depth + 1]);
    }
  }
  /* values: leaves get samples, parents sum them; children largest first */
  const fill = (n) => {
    if (!n.children.length) n.self = n.value = 1 + Math.floor(rand() * 50);
    else {
      n.value = 0;
      for (const c of n.children) n.value += fill(c);
      n.children.sort((a, b) => b.value - a.value);
    }
    return n.value;
  };
  fill(root);
  const json = JSON.stringify({ total: root.value, root });

  const canvas = document.getElementById('c');
  const g = new window.Ember.FlameGraph(canvas, {});
  const t0 = performance.now();
  const data = JSON.parse(json);
  const t1 = performance.now();
  const n = g.setTree(data.root, (x) => x.value);
  const t2 = performance.now();
  g.draw();
  const t3 = performance.now();
  const drawn = g.lastStats.drawn;
  g.focus = 1;
  g.draw();
  const t4 = performance.now();
  g.setSearch(/function_7/);
  g.draw();
  const t5 = performance.now();
  return { nodes: n, bytes: json.length, drawn, parse: t1 - t0, layout: t2 - t1, draw: t3 - t2,
    zoomDraw: t4 - t3, search: t5 - t4 };
}

async function main() {
  const why = missing();
  if (why) {
    console.log('SKIPPED: ' + why);
    return;
  }
  const b = await launch({ viewport: { width: 1366, height: 768 } });
  try {
    const page = await b.context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.setContent('<!doctype html><div style="width:1300px"><canvas id="c"></canvas></div>');
    await page.addScriptTag({ path: path.join(__dirname, '..', '..', 'web', 'flame.js') });
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await page.evaluate(benchInPage, NODES));
    if (errors.length) throw new Error(errors.join('; '));
    const median = (k) => runs.map((r) => r[k]).sort((x, y) => x - y)[2];
    const r = runs[0];
    const total = median('parse') + median('layout') + median('draw');
    console.log('render_bench: ' + r.nodes + ' nodes (' + (r.bytes / 1e6).toFixed(1) + ' MB of JSON), ' +
      r.drawn + ' frames wide enough to draw at 1300 px');
    for (const k of ['parse', 'layout', 'draw', 'zoomDraw', 'search']) {
      console.log('  ' + k.padEnd(9) + median(k).toFixed(1).padStart(8) + ' ms');
    }
    console.log('render_bench: parse + layout + first draw = ' + total.toFixed(1) + ' ms (goal <= ' +
      GOAL_MS + ' ms): ' + (total <= GOAL_MS ? 'OK' : 'TOO SLOW'));
  } finally {
    await b.close();
  }
}

main().catch((e) => {
  console.error('render_bench: ' + e.message);
  process.exit(1);
});
