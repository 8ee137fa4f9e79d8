/*
 * views.test.js - browser tests of the views Pyroscope, Parca and pprof
 * users expect (issue [13], "Views ... Ember lacks"), run with `node --test`.
 *
 * The known dataset of ui.test.js (tests/tools/fill_db.c: service "shop",
 * versions 1.0 and 2.0, a recursion render_node x8) is served by
 * tests/tools/serve_db.c and Debian's Chromium, driven by playwright-core,
 * uses the page.  Every expected value comes from the API's own answers
 * for the query the page made: the tooltip's shares from /api/flamegraph
 * and /api/diff, the exported folded text from /api/folded (reshaped by
 * this file's own few lines when a focus, a hide or merged recursion is
 * on), the table's counts from that folded text, the SVG's frames from
 * /api/flamegraph.  No number is written down here.
 *
 * Environment: EMBER_BUILD (default build) locates build/tools/.
 */
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { missing, launch, startServer, watchedPage, framePoint, FLAME_ROW } = require('./browser.js');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.resolve(ROOT, process.env.TEST_OUT || path.join('build', 'test-output', 'web'));
const MIN_PX = 0.35;   /* narrower frames are not drawn (web/flame.js) */

const why = missing();
if (why) console.log('SKIPPED: ' + why);

const pct = (v, of) => (of > 0 ? ((100 * v) / of).toFixed(2) : '0.00') + '%';
const ready = (page) => page.waitForFunction(() => document.body.dataset.ready === '1');
const text = (page, sel) => page.locator(sel).innerText();

/* The first node named name in an API tree, with its parent. */
function findNode(root, name) {
  const stack = [[root, null]];
  while (stack.length) {
    const [n, up] = stack.pop();
    if (n.name === name) return { node: n, parent: up };
    for (const c of (n.children || []).slice().reverse()) stack.push([c, n]);
  }
  return null;
}

/* ---- folded text: parse, reshape, print (the oracle of the exports) ---- */

function parseFolded(s) {
  return s.split('\n').filter(Boolean).map((l) => {
    const k = l.lastIndexOf(' ');
    return { frames: l.slice(0, k).split(';'), n: Number(l.slice(k + 1)) };
  });
}

function printFolded(lines) {
  const m = new Map();
  for (const l of lines) {
    if (!l.frames.length) continue;
    const k = l.frames.join(';');
    m.set(k, (m.get(k) || 0) + l.n);
  }
  return [...m.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((k) => k + ' ' + m.get(k) + '\n').join('');
}

const hideFrames = (lines, re) => lines.map((l) => ({ frames: l.frames.filter((f) => !re.test(f)), n: l.n }));
const mergeRecursion = (lines) => lines.map((l) => ({ frames: l.frames.filter((f, i) => !i || l.frames[i - 1] !== f), n: l.n }));
function focusOn(lines, fn) {
  return lines.filter((l) => l.frames.includes(fn)).map((l) => ({ frames: l.frames.slice(l.frames.indexOf(fn)), n: l.n }));
}

/*
 * Self and total per function (total once per stack), as /api/top counts
 * them; functions by name, without the kernel's "_[k]".
 */
function functionsOf(lines) {
  const m = new Map();
  const get = (f) => m.get(f) || (m.set(f, { self: 0, total: 0 }), m.get(f));
  for (const l of lines) {
    if (!l.frames.length) continue;
    const names = l.frames.map((f) => f.replace(/_\[k\]$/, ''));
    get(names[names.length - 1]).self += l.n;
    for (const f of new Set(names)) get(f).total += l.n;
  }
  return m;
}

/* The URL of the folded stacks for the query behind a /api/flamegraph request. */
const foldedUrl = (flameUrl) => flameUrl.replace('/api/flamegraph?', '/api/folded?');

async function downloadText(page, selector) {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const file = await d.path();
  return { name: d.suggestedFilename(), text: fs.readFileSync(file, 'utf8') };
}

test('views (issue 13)', { skip: why || false, timeout: 240000 }, async (t) => {
  fs.mkdirSync(OUT, { recursive: true });
  const server = await startServer();
  const browser = await launch({ viewport: { width: 1440, height: 900 } });
  const problems = [];
  try {
    const page = await watchedPage(browser.context, server.url, problems);
    const shot = (name) => page.screenshot({ path: path.join(OUT, 'views-' + name + '.png') });

    /* open a view; resolves to the JSON and URL of the flame graph request it made */
    async function open(hash, api) {
      const re = new RegExp('/api/' + (api || 'flamegraph') + '\\?');
      const resp = page.waitForResponse((r) => re.test(r.url()));
      await page.goto('about:blank');
      await page.goto(server.url + '#' + hash);
      const r = await resp;
      await ready(page);
      await page.waitForFunction(() => /samples/.test(document.getElementById('status').textContent));
      return { json: await r.json(), url: r.url() };
    }

    await t.test('the tooltip gives the share of the parent and of the total', async () => {
      const { json } = await open('s=shop&v=2.0&live=0');
      const { node, parent } = findNode(json.root, 'compute_hash');
      assert.equal(parent.name, 'checkout');
      const p = await framePoint(page, 'compute_hash');
      await page.mouse.move(p.x, p.y);
      await page.waitForSelector('#tooltip:not([hidden])');
      const tip = await text(page, '#tooltip');
      assert.ok(tip.includes(pct(node.value, parent.value) + ' of parent checkout'), tip);
      assert.ok(tip.includes(pct(node.value, json.total) + ' of all'), tip);
      await shot('tooltip');
      await page.mouse.move(5, 5);

      /* the diff: the share of the parent on each side */
      const diff = await open('s=shop&v=2.0&cmp=v%3A1.0&live=0', 'diff');
      const d = findNode(diff.json.root, 'compute_hash');
      const q = await framePoint(page, 'compute_hash');
      await page.mouse.move(q.x, q.y);
      await page.waitForSelector('#tooltip:not([hidden])');
      const dtip = await text(page, '#tooltip');
      assert.ok(dtip.includes('of parent checkout: ' + pct(d.node.b, d.parent.b) + ' in B, ' +
        pct(d.node.a, d.parent.a) + ' in A'), dtip);
      await page.mouse.move(5, 5);
    });

    await t.test('the folded export is /api/folded for the same query', async () => {
      const { url } = await open('s=shop&v=2.0&live=0');
      const api = await (await page.request.get(foldedUrl(url))).text();
      assert.ok(api.split('\n').length > 10, 'the API has stacks: ' + api.slice(0, 200));
      const got = await downloadText(page, '#export-folded');
      assert.equal(got.name, 'ember-shop-2.0.folded');
      assert.equal(got.text, api);
      /* zoomed: the stacks through the zoomed frame, whole */
      const p = await framePoint(page, 'checkout');
      await page.mouse.click(p.x, p.y);
      await page.waitForFunction(() => /z=checkout/.test(location.hash));
      const zoomed = await downloadText(page, '#export-folded');
      const want = printFolded(parseFolded(api).filter((l) => l.frames.slice(0, 4).join(';') === 'main;serve;handle_request;checkout'));
      assert.ok(want.length > 0);
      assert.equal(zoomed.text, want);
    });

    await t.test('hide, merged recursion and focus reshape the graph, its export and the URL', async () => {
      const cases = [
        ['hide=%5Eserve%24', (l) => hideFrames(l, /^serve$/), /hiding \/\^serve\$\//],
        ['rec=1', mergeRecursion, /recursion merged/],
        ['focus=checkout', (l) => focusOn(l, 'checkout'), /focus on checkout/],
        ['focus=render_page&rec=1&hide=template', (l) => focusOn(mergeRecursion(hideFrames(l, /template/i)), 'render_page'),
          /focus on render_page, hiding \/template\/, recursion merged/],
      ];
      for (const [hash, reshape, status] of cases) {
        const { url } = await open('s=shop&v=2.0&live=0&' + hash);
        await page.waitForFunction((re) => new RegExp(re).test(document.getElementById('status').textContent), status.source);
        const api = parseFolded(await (await page.request.get(foldedUrl(url))).text());
        const got = await downloadText(page, '#export-folded');
        assert.equal(got.text, printFolded(reshape(api)), hash);
      }
      /* the recursion is one frame deep once merged */
      const depth = await page.evaluate(() => window.Ember.app.flame.rows());
      const lines = parseFolded(await (await page.request.get(server.url + 'api/folded?service=shop&version=2.0')).text());
      const deepest = Math.max(...focusOn(mergeRecursion(hideFrames(lines, /template/i)), 'render_page').map((l) => l.frames.length));
      assert.equal(depth, deepest + 1, 'rows: the root and the deepest reshaped stack');
      /* the controls show the state; clearing the focus goes back to every stack */
      assert.equal(await page.inputValue('#focus'), 'render_page');
      assert.equal(await page.inputValue('#hide'), 'template');
      assert.ok(await page.isChecked('#rec'));
      await shot('reshaped');
      await page.click('#focus-clear');
      await page.waitForFunction(() => !/focus=/.test(location.hash));
      assert.match(page.url(), /hide=template/);
      /* the zoom's "focus" chip sets it */
      await page.evaluate(() => { location.hash = 's=shop&v=2.0&live=0'; });
      await page.waitForFunction(() => /samples/.test(document.getElementById('status').textContent) &&
        !/hiding|focus on|recursion/.test(document.getElementById('status').textContent));
      const p = await framePoint(page, 'checkout');
      await page.mouse.click(p.x, p.y);
      await page.click('#crumbs button.chip:has-text("focus")');
      await page.waitForFunction(() => /focus=checkout/.test(location.hash) && /focus on checkout/.test(document.getElementById('status').textContent));
      assert.equal(await page.evaluate(() => window.Ember.app.flame.nodes[1].name), 'checkout');
    });

    await t.test('the top table follows the focus and the hidden frames', async () => {
      for (const [hash, reshape] of [
        ['hide=%5Echeckout%24', (l) => hideFrames(l, /^checkout$/i)],
        ['focus=handle_request&rec=1', (l) => focusOn(mergeRecursion(l), 'handle_request')],
      ]) {
        await page.goto('about:blank');
        await page.goto(server.url + '#s=shop&v=2.0&live=0&view=top&sort=total&' + hash);
        await ready(page);
        await page.waitForSelector('#top tr[data-fn]');
        const rows = await page.evaluate(() => [...document.querySelectorAll('#top tbody tr[data-fn]')].map((tr) => ({
          fn: tr.dataset.fn,
          self: Number(tr.children[1].textContent.replace(/,/g, '')),
          total: Number(tr.children[3].textContent.replace(/,/g, '')),
        })));
        const want = functionsOf(reshape(parseFolded(await (await page.request.get(server.url + 'api/folded?service=shop&version=2.0')).text())));
        assert.equal(rows.length, want.size, hash + ': ' + rows.map((r) => r.fn).join());
        for (const r of rows) {
          assert.ok(want.has(r.fn), hash + ': ' + r.fn + ' is in no reshaped stack');
          assert.deepStrictEqual([r.fn, r.self, r.total], [r.fn, want.get(r.fn).self, want.get(r.fn).total], hash);
        }
        assert.ok(rows.every((r, i) => !i || rows[i - 1].total >= r.total), hash + ': sorted by total');
      }
    });

    await t.test('the SVG export draws one rectangle per frame on screen', async () => {
      const { json } = await open('s=shop&v=2.0&live=0');
      const got = await downloadText(page, '#export-svg');
      assert.equal(got.name, 'ember-shop-2.0.svg');
      const width = await page.evaluate(() => document.getElementById('flame').parentElement.clientWidth);
      const parsed = await page.evaluate((svg) => {
        const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
        if (doc.querySelector('parsererror')) return { error: doc.querySelector('parsererror').textContent };
        return {
          root: doc.documentElement.localName,
          frames: [...doc.querySelectorAll('g > rect')].map((r) => ({
            name: r.parentElement.querySelector('title').textContent.split('\n')[0],
            width: Number(r.getAttribute('width')),
          })),
        };
      }, got.text);
      assert.ok(!parsed.error, 'valid XML: ' + parsed.error);
      assert.equal(parsed.root, 'svg');
      /* the frames wide enough to draw, from the API's tree */
      const want = [];
      const stack = [json.root];
      while (stack.length) {
        const n = stack.pop();
        if ((n.value * width) / json.root.value < MIN_PX) continue;
        want.push(n.name + (n.kernel ? ' [kernel]' : ''));
        for (const c of n.children || []) stack.push(c);
      }
      assert.equal(parsed.frames.length, want.length, 'one rect per visible frame');
      assert.deepStrictEqual(parsed.frames.map((f) => f.name).sort(), want.sort());
      fs.writeFileSync(path.join(OUT, 'views-export.svg'), got.text);
    });

    await t.test('the table beside the flame graph: side by side and linked both ways', async () => {
      const { json } = await open('s=shop&v=2.0&live=0&split=1');
      await page.waitForSelector('#top tr[data-fn]');
      const flameBox = await page.locator('#view-flame').boundingBox();
      const tableBox = await page.locator('#view-top').boundingBox();
      assert.ok(flameBox.x + flameBox.width <= tableBox.x, 'the table is right of the graph');
      assert.ok(tableBox.y < flameBox.y + flameBox.height && flameBox.y < tableBox.y + tableBox.height, 'side by side');
      assert.ok(tableBox.x + tableBox.width <= 1440, 'the table ends in the window');
      /* hovering a row outlines every frame of its function: as many as the API's tree holds */
      let frames = 0;
      const stack = [json.root];
      while (stack.length) {
        const n = stack.pop();
        if (n.name === 'render_node') frames++;
        for (const c of n.children || []) stack.push(c);
      }
      assert.ok(frames > 1, 'render_node recurses');
      await page.hover('#top tr[data-fn=render_node] td.num');
      await page.waitForFunction((k) => window.Ember.app.flame.lastStats.marked === k, frames);
      await shot('split-row-hover');
      /* hovering a frame marks its row */
      const p = await framePoint(page, 'checkout');
      await page.mouse.move(p.x, p.y);
      await page.waitForSelector('#top tr.linked[data-fn=checkout]');
      assert.equal(await page.locator('#top tr.linked').count(), 1);
      await page.mouse.move(5, 5);
      await page.waitForFunction(() => !document.querySelector('#top tr.linked'));
      /* a click on a row keeps its frames outlined; the URL keeps the layout */
      await page.click('#top tr[data-fn=compute_hash] button');
      await page.waitForSelector('#top tr.picked[data-fn=compute_hash]');
      await page.mouse.move(5, 5);
      await page.waitForFunction(() => window.Ember.app.flame.lastStats.marked === 1);
      assert.match(page.url(), /split=1/);
      assert.ok(await page.locator('#view-flame').isVisible(), 'still the flame graph (no sandwich)');
      /* the table follows the reshaping here too */
      await page.fill('#hide', '^checkout$');
      await page.waitForFunction(() => /hiding/.test(document.getElementById('status').textContent) &&
        !document.querySelector('#top tr[data-fn=checkout]') && document.querySelector('#top tr[data-fn]'));
    });

    await t.test('the sandwich of a diff: both sides, from the API\'s own sandwich of each', async () => {
      const { url } = await open('s=shop&v=2.0&cmp=v%3A1.0&live=0&view=sandwich&fn=checkout', 'diff');
      await page.waitForFunction(() => /of A/.test(document.getElementById('sw-title').textContent));
      const q = new URL(url).searchParams;
      const side = async (prefix) => {
        const p = new URLSearchParams({ function: 'checkout' });
        for (const k of ['service', 'version', 'from', 'to']) if (q.get(prefix + k)) p.set(k, q.get(prefix + k));
        return (await page.request.get(server.url + 'api/sandwich?' + p)).json();
      };
      const [A, B] = [await side('a.'), await side('b.')];
      assert.ok(A.total > 0 && B.total > 0, 'checkout runs in both versions');
      /* every path of each tree: the page's b and a against the API's B and A values */
      const paths = (root, valueOf) => {
        const m = new Map();
        const stack = [[root, root.name]];
        while (stack.length) {
          const [n, k] = stack.pop();
          if (valueOf(n) > 0) m.set(k, valueOf(n));
          for (const c of n.children || []) stack.push([c, k + ';' + c.name]);
        }
        return m;
      };
      const mine = await page.evaluate(() => {
        const sw = window.Ember.app.sandwich;
        const strip = (n) => ({ name: n.name, a: n.a, b: n.b, a_self: n.a_self, b_self: n.b_self, children: n.children.map(strip) });
        return { callers: strip(sw.data.callers), callees: strip(sw.data.callees) };
      });
      for (const part of ['callers', 'callees']) {
        assert.deepStrictEqual(paths(mine[part], (n) => n.b), paths(B[part], (n) => n.value), part + ' of B');
        assert.deepStrictEqual(paths(mine[part], (n) => n.a), paths(A[part], (n) => n.value), part + ' of A');
      }
      assert.equal(mine.callees.b_self, B.self);
      assert.equal(mine.callees.a_self, A.self);
      /* coloured as a diff, with the legend; the tooltip gives both sides */
      assert.ok(await page.locator('#legend').isVisible(), 'the diff legend shows');
      const p = await page.evaluate((row) => {
        const g = window.Ember.app.sandwich.callees;
        const i = g.nodes.findIndex((n) => n.name === 'compute_hash');
        const r = g.canvas.getBoundingClientRect();
        return { x: r.left + (g.x[i] / g.w[0]) * r.width + 5, y: r.top + g.depth[i] * row + row / 2 };
      }, FLAME_ROW);
      await page.mouse.move(p.x, p.y);
      await page.waitForSelector('#tooltip:not([hidden])');
      const tip = await text(page, '#tooltip');
      assert.match(tip, /compute_hash/);
      assert.match(tip, /^B: .* samples/m);
      assert.match(tip, /^A: .* samples/m);
      assert.match(tip, /change: \+/);
      await shot('sandwich-diff');
      await page.mouse.move(5, 5);
    });

    await t.test('a process picker narrows the selection to one pid', async () => {
      await open('s=shop&live=0');
      const targets = (await (await page.request.get(server.url + 'api/targets')).json()).targets;
      const byPid = new Map();
      for (const t of targets) if (t.service === 'shop') byPid.set(t.pid, (byPid.get(t.pid) || 0) + t.samples);
      assert.ok(byPid.size >= 2, 'shop ran as several processes');
      await page.waitForFunction((n) => document.querySelectorAll('#pid option').length === n + 1, byPid.size);
      const options = await page.locator('#pid option').allInnerTexts();
      for (const [pid, n] of byPid) {
        assert.ok(options.some((o) => o.includes(' ' + pid + ' \u00b7 ' + n.toLocaleString('en-US') + ' samples')), pid + ': ' + options);
      }
      const [pid, n] = [...byPid].sort((a, b) => b[1] - a[1])[1];
      const asked = page.waitForRequest((r) => new RegExp('/api/flamegraph\\?.*pid=' + pid).test(r.url()));
      await page.selectOption('#pid', String(pid));
      await asked;
      await page.waitForFunction((want) => new RegExp('pid \\d+ \u00b7 ' + want + ' samples').test(document.getElementById('status').textContent),
        n.toLocaleString('en-US'));
      assert.match(page.url(), new RegExp('pid=' + pid));
      assert.equal(await page.evaluate(() => window.Ember.app.flame.totalValue), n);
    });

    await t.test('by process: one tower per process, exported as /api/folded?group=process', async () => {
      const { url } = await open('s=shop&live=0&group=process');
      assert.match(url, /group=process/);
      await page.waitForFunction(() => /by process/.test(document.getElementById('status').textContent));
      const targets = (await (await page.request.get(server.url + 'api/targets')).json()).targets;
      const want = new Map();
      for (const t of targets) {
        if (t.service === 'shop') want.set(t.comm + '-' + t.pid, (want.get(t.comm + '-' + t.pid) || 0) + t.samples);
      }
      const towers = await page.evaluate(() => {
        const g = window.Ember.app.flame;
        const out = {};
        for (let c = 1; c < g.end[0]; c = g.end[c]) out[g.nodes[c].name] = g.w[c];
        return out;
      });
      assert.deepStrictEqual(new Map(Object.entries(towers)), want);
      assert.ok(await page.isChecked('#byproc'));
      const got = await downloadText(page, '#export-folded');
      assert.equal(got.text, await (await page.request.get(foldedUrl(url))).text());
      assert.ok(got.text.split('\n').filter(Boolean).every((l) => want.has(l.split(';')[0])), 'every stack starts with its process');
      await shot('by-process');
      /* unticked: the towers go */
      await page.uncheck('#byproc');
      await page.waitForFunction(() => !/group=/.test(location.hash) && window.Ember.app.flame.nodes[1].name === 'main');
    });

    await t.test('no console errors, page errors or foreign requests', () => {
      assert.deepStrictEqual(problems, []);
    });
  } finally {
    await browser.close();
    server.stop();
  }
});
