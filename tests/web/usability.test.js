/*
 * usability.test.js - browser tests of what a new user found wrong with
 * the UI (issue [13]), run with `node --test`.
 *
 * The known dataset of ui.test.js (tests/tools/fill_db.c: service "shop",
 * versions 1.0 and 2.0) is served by tests/tools/serve_db.c; Debian's
 * Chromium, driven by playwright-core, opens each tab at 1440x900 and
 * 1024x768 and checks that no element reaches past the viewport.  Where
 * the dataset has no long C++ names, the answers of the API are lengthened
 * on their way to the page (page.route): 48 vanished functions with
 * 300-character names, saved reports with long summaries, a table row with
 * a long template name.  Each numbered problem of the issue has its own
 * subtest that failed before its fix.
 *
 * Environment: EMBER_BUILD (default build) locates build/tools/.
 */
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { missing, launch, startServer, watchedPage } = require('./browser.js');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.resolve(ROOT, process.env.TEST_OUT || path.join('build', 'test-output', 'web'));
const SIZES = [{ width: 1440, height: 900 }, { width: 1024, height: 768 }];

const why = missing();
if (why) console.log('SKIPPED: ' + why);

/* A C++ name as long as the ones that broke the layout. */
function longName(i) {
  return 'std::_Function_handler<void (boost::system::error_code const&), ' +
    'boost::asio::detail::binder2<shop::Session::on_read(std::shared_ptr<shop::Request<' +
    'std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > > >)::' +
    'lambda' + i + ', boost::system::error_code, unsigned long> >::_M_invoke(std::_Any_data const&)';
}

/*
 * Elements of the page that reach past the right edge of the viewport
 * (and are not clipped by a scrolling or hiding ancestor), and the page's
 * scroll width.
 */
function overflow(page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const clipped = (e) => {
      for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX;
        if (o !== 'visible') {
          const r = p.getBoundingClientRect();
          return r.right <= vw + 1;
        }
      }
      return false;
    };
    const out = [];
    for (const e of document.body.querySelectorAll('*')) {
      const r = e.getBoundingClientRect();
      if (!r.width || !r.height || r.right <= vw + 1) continue;
      if (getComputedStyle(e).visibility === 'hidden' || !e.checkVisibility() || clipped(e)) continue;
      out.push((e.id ? '#' + e.id : e.tagName.toLowerCase() + '.' + e.className) + ' right=' + Math.round(r.right));
      if (out.length > 5) break;
    }
    return { scrollWidth: document.documentElement.scrollWidth, vw, out };
  });
}

async function assertFits(page, what) {
  const o = await overflow(page);
  assert.ok(o.scrollWidth <= o.vw, what + ': page is ' + o.scrollWidth + ' px wide in ' + o.vw + ': ' + o.out.join(', '));
  assert.deepStrictEqual(o.out, [], what + ': elements past the right edge');
}

/* Replace the JSON answers of an API path with edit(json). */
function rewrite(page, glob, edit) {
  return page.route(glob, async (route) => {
    const resp = await route.fetch();
    const json = await resp.json();
    await route.fulfill({ response: resp, json: edit(json) });
  });
}

const ready = (page) => page.waitForFunction(() => document.body.dataset.ready === '1');

test('usability (issue 13)', { skip: why || false, timeout: 240000 }, async (t) => {
  fs.mkdirSync(OUT, { recursive: true });
  const server = await startServer();
  const browser = await launch({ viewport: SIZES[0] });
  const problems = [];
  try {
    const page = await watchedPage(browser.context, server.url, problems);
    const shot = (name) => page.screenshot({ path: path.join(OUT, 'usability-' + name + '.png') });

    await t.test('1. a long "Vanished in B" list stays in the window', async () => {
      await rewrite(page, '**/api/diff?*', (j) => {
        for (let i = 0; i < 47; i++) j.vanished.push({ name: longName(i), a_total_share: 0.001, a_self_share: 0.001 });
        return j;
      });
      for (const size of SIZES) {
        await page.setViewportSize(size);
        await page.goto(server.url + '#s=shop&v=2.0&cmp=v%3A1.0');
        await ready(page);
        await page.waitForFunction(() => /Vanished in B \(48\)/.test(document.querySelector('#vanished summary').textContent));
        await page.click('#vanished summary');
        const box = await page.locator('#vanished ul').boundingBox();
        assert.ok(box.x >= 0 && box.x + box.width <= size.width, 'list at ' + box.x + '+' + box.width + ' in ' + size.width);
        await assertFits(page, 'vanished list open at ' + size.width);
        /* the full name is in the tooltip of the shortened line */
        const title = await page.locator('#vanished ul li button').nth(1).getAttribute('title');
        assert.ok(title.startsWith(longName(0)), title);
        await shot('vanished-' + size.width);
        await page.click('#vanished summary');
      }
      await page.unroute('**/api/diff?*');
    });

    await t.test('2. the Reports tab fits and is kept in the URL', async () => {
      await rewrite(page, '**/api/reports?*', () => ({
        reports: [0, 1, 2].map((i) => ({
          id: 10 + i, from: Date.now() - 86400e3 * (i + 1), to: Date.now() - 86400e3 * i,
          baseline: 'previous day', service: 'search-indexer-' + 'x'.repeat(40), regressions: 3,
          summary: '3 regressions, 2 improvements; worst: ' + longName(i) + ' +4.2 pp self',
          created: Date.now(), url: 'api/reports/' + (10 + i),
        })),
      }));
      for (const size of SIZES) {
        await page.setViewportSize(size);
        await page.goto('about:blank');
        await page.goto(server.url + '#s=shop');
        await ready(page);
        await page.click('#tab-reports');
        await page.waitForSelector('#reports tbody tr');
        await assertFits(page, 'reports at ' + size.width);
        const json = await page.locator('#reports a:has-text("JSON")').first().boundingBox();
        assert.ok(json.x + json.width <= size.width, 'JSON link at ' + json.x);
        assert.match(page.url(), /tab=reports/);
        await page.reload();
        await ready(page);
        await page.waitForSelector('#reports tbody tr');
        assert.ok(await page.locator('#view-reports').isVisible(), 'reports shown after a reload');
        assert.ok(!(await page.locator('#view-flame').isVisible()), 'flame graph hidden after a reload');
        assert.match(await page.locator('#tab-reports').getAttribute('class'), /active/);
      }
      await shot('reports');
      /* another tab takes tab= out of the URL */
      await page.click('[data-view=flame]');
      assert.doesNotMatch(page.url(), /tab=/);
      await page.unroute('**/api/reports?*');
    });

    await t.test('3. the top table sorts by each change, both ways, and shortens long names', async () => {
      await page.setViewportSize(SIZES[0]);
      await page.goto(server.url + '#s=shop&v=2.0&cmp=v%3A1.0&view=top');
      await ready(page);
      await page.waitForSelector('#top tr[data-fn]');
      const column = (key) => page.evaluate((key) => {
        const i = [...document.querySelectorAll('#top thead th')].findIndex((th) => th.dataset.key === key);
        return [...document.querySelectorAll('#top tbody tr')].map((tr) =>
          parseFloat(tr.children[i].textContent.replace('\u2212', '-').replace('\u00b1', '')));
      }, key);
      const sorted = (xs, asc) => xs.every((x, i) => !i || (asc ? xs[i - 1] <= x : xs[i - 1] >= x));
      const req = page.waitForRequest((r) => /api\/top\?.*sort=diff_total/.test(r.url()));
      await page.click('#top th[data-key=diff_total] button');
      await req;
      await page.waitForFunction(() => /sort=diff_total/.test(location.hash) &&
        document.querySelector('#top th[data-key=diff_total] button.active'));
      await page.waitForSelector('#top tr[data-fn]');
      const desc = await column('diff_total');
      assert.ok(sorted(desc, false), 'Δ total descending: ' + desc.slice(0, 8));
      assert.ok(desc[0] > 0, 'largest growth first');
      /* again: ascending, the improvements first */
      await page.click('#top th[data-key=diff_total] button');
      await page.waitForFunction(() => /asc=1/.test(location.hash));
      await page.waitForFunction(() => /\u25b4/.test(document.querySelector('#top th[data-key=diff_total]').textContent));
      await page.waitForSelector('#top tr[data-fn]');
      const asc = await column('diff_total');
      assert.ok(sorted(asc, true), 'Δ total ascending: ' + asc.slice(0, 8));
      assert.ok(asc[0] < 0, 'an improvement first: ' + asc[0]);
      assert.equal(await page.locator('#top tbody tr').first().getAttribute('data-fn'), 'legacy_cache_lookup');
      /* the Δ self header still sorts by Δ self */
      await page.click('#top th[data-key=diff_self] button');
      await page.waitForFunction(() => /sort=diff(&|$)/.test(location.hash));
      await page.waitForSelector('#top tr[data-fn]');
      assert.ok(sorted(await column('diff_self'), false), 'Δ self descending');

      /* a long name: an ellipsis, the full name in the tooltip */
      await rewrite(page, '**/api/top?*', (j) => {
        j.functions[0].name = longName(7);
        return j;
      });
      await page.click('[data-view=flame]');
      await page.click('[data-view=top]');
      await page.waitForSelector('#top tbody tr[data-fn^="std::"]');
      const b = page.locator('#top tbody tr').first().locator('button');
      const cut = await b.evaluate((e) => ({ clipped: e.scrollWidth > e.clientWidth, style: getComputedStyle(e).textOverflow }));
      assert.ok(cut.clipped, 'the long name is shortened');
      assert.equal(cut.style, 'ellipsis');
      assert.ok((await b.getAttribute('title')).startsWith(longName(7)), 'full name in the tooltip');
      await assertFits(page, 'top table with a long name');
      await shot('top-long');
      await page.unroute('**/api/top?*');
    });

    await t.test('7. the service picker: largest first, small ones folded, a filter', async () => {
      const tiny = ['kworker/u8:1-writeback', 'ls', 'cat', 'sed', 'cron'].concat([...Array(40).keys()].map((i) => 'job-' + i));
      await rewrite(page, '**/api/services', (j) => {
        const now = Date.now();
        for (const name of tiny) {
          j.services.push({ service: name, samples: 1, first_seen: now - 60e3, last_seen: now,
            versions: [{ version: 'abc', samples: 1, first_seen: now - 60e3, last_seen: now, targets: 1 }] });
        }
        j.services.sort((a, b) => a.service.localeCompare(b.service)); /* the API lists by name */
        return j;
      });
      await page.setViewportSize(SIZES[0]);
      await page.goto('about:blank');
      await page.goto(server.url + '#');
      await ready(page);
      const options = () => page.locator('#service option').allInnerTexts();
      let list = await options();
      assert.equal(list.length, 3, 'shop, search and the fold: ' + list.join(' | '));
      assert.match(list[0], /^shop \u00b7/, 'largest first');
      assert.match(list[2], /^\+ 45 small services/);
      assert.ok(!list.some((o) => /\b1 samples/.test(o)), 'no "1 samples"');
      /* show all: everything, singular "1 sample", and the choice kept in the URL */
      await page.selectOption('#service', '*all');
      await page.waitForFunction(() => document.querySelectorAll('#service option').length > 40);
      list = await options();
      assert.ok(list.includes('ls \u00b7 1 sample'), list.slice(0, 6).join(' | '));
      assert.match(page.url(), /svcs=all/);
      /* the filter narrows the list; Enter picks the first match */
      await page.fill('#svc-filter', 'kwork');
      list = await options();
      assert.ok(list.some((o) => o.startsWith('kworker/u8:1-writeback')), list.join(' | '));
      assert.ok(!list.some((o) => o.startsWith('job-')), list.join(' | '));
      await page.press('#svc-filter', 'Enter');
      await page.waitForFunction(() => /s=kworker/.test(location.hash));
      assert.equal(await page.inputValue('#service'), 'kworker/u8:1-writeback');
      await assertFits(page, 'service picker');
      await page.unroute('**/api/services');
    });

    await t.test('10. live mode: a fresh database fills in without a click', async () => {
      let fresh = true; /* until flipped, the API answers as an empty database would */
      await page.route('**/api/services', (route) => (fresh ? route.fulfill({ json: { services: [], truncated: false } }) : route.continue()));
      await page.route('**/api/flamegraph?*', (route) => (fresh
        ? route.fulfill({ json: { total: 0, nodes: 1, truncated: false, root: { name: 'all', value: 0, self: 0, children: [] } } })
        : route.continue()));
      await page.setViewportSize(SIZES[0]);
      await page.goto('about:blank');
      await page.goto(server.url + '#r=1h');
      await ready(page);
      assert.ok(await page.isChecked('#live'), 'live by default for "last 1 h"');
      assert.match(await page.locator('#empty').innerText(), /No samples yet.*every few seconds/);
      fresh = false;
      await page.waitForFunction(() => /samples/.test(document.getElementById('status').textContent) &&
        window.Ember.app.flame.totalValue > 0, null, { timeout: 25000 });
      assert.match(page.url(), /s=shop/);
      assert.ok(await page.locator('#empty').isHidden());
      await page.unroute('**/api/services');
      await page.unroute('**/api/flamegraph?*');
      /* a brushed (fixed) window is not live; the box turns it on by hand, in the URL */
      await page.goto(server.url + '#s=shop&from=1&to=2');
      await ready(page);
      assert.ok(!(await page.isChecked('#live')), 'not live for a fixed window');
      await page.check('#live');
      assert.match(page.url(), /live=1/);
    });

    await t.test('11. the two pprof downloads are named by service and version', async () => {
      await page.setViewportSize(SIZES[0]);
      await page.goto('about:blank');
      await page.goto(server.url + '#s=shop&v=2.0&cmp=v%3A1.0');
      await ready(page);
      const names = [];
      for (const sel of ['#pprof', '#pprof-base']) {
        const [download] = await Promise.all([page.waitForEvent('download'), page.click(sel)]);
        names.push(download.suggestedFilename());
        await download.cancel();
      }
      assert.deepStrictEqual(names, ['ember-shop-2.0.pb.gz', 'ember-shop-1.0.pb.gz']);
    });

    await t.test('12. dark mode follows the system, and the button overrides it', async () => {
      const bg = () => page.evaluate(() => {
        const m = /rgb\((\d+), (\d+), (\d+)/.exec(getComputedStyle(document.body).backgroundColor);
        return (Number(m[1]) + Number(m[2]) + Number(m[3])) / 3;
      });
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.goto('about:blank');
      await page.goto(server.url + '#s=shop');
      await ready(page);
      assert.ok((await bg()) < 60, 'dark background under prefers-color-scheme: dark: ' + (await bg()));
      const panel = await page.evaluate(() => getComputedStyle(document.querySelector('.chart')).backgroundColor);
      assert.notEqual(panel, 'rgb(255, 255, 255)', 'the chart panel is not white');
      await shot('dark');
      /* auto -> dark -> light: light wins over the system */
      await page.click('#theme');
      assert.match(await page.locator('#theme').innerText(), /dark/);
      await page.click('#theme');
      assert.match(await page.locator('#theme').innerText(), /light/);
      assert.ok((await bg()) > 200, 'light when chosen: ' + (await bg()));
      await page.reload();
      await ready(page);
      assert.ok((await bg()) > 200, 'the choice survives a reload');
      await page.click('#theme'); /* back to auto */
      await page.emulateMedia({ colorScheme: 'light' });
      assert.ok((await bg()) > 200);
    });

    await t.test('13. a [truncated] frame says why in its tooltip, with the counter', async () => {
      await rewrite(page, '**/api/flamegraph?*', (j) => {
        /* a third more samples, whose stacks were cut short */
        const v = Math.round(j.total / 3);
        j.root.children.push({ name: '[truncated]', value: v, self: v, kernel: false, inlined: false, children: [] });
        j.root.value += v;
        j.total += v;
        return j;
      });
      await rewrite(page, '**/api/stats', (j) => Object.assign(j, { agent: { collector: { truncated: 1234 } } }));
      await page.goto('about:blank');
      await page.goto(server.url + '#s=shop&v=2.0');
      await ready(page);
      await page.waitForFunction(() => window.Ember.app.flame.nodes.some((n) => n.name === '[truncated]'));
      const p = await page.evaluate(() => {
        const g = window.Ember.app.flame;
        const i = g.nodes.findIndex((n) => n.name === '[truncated]');
        const r = g.canvas.getBoundingClientRect();
        const scale = r.width / g.w[g.focus];
        return { x: r.left + (g.x[i] - g.x[g.focus]) * scale + 10, y: r.top + g.depth[i] * 18 + 9 };
      });
      await page.mouse.move(p.x, p.y);
      await page.waitForSelector('#tooltip:not([hidden])');
      const tip = await page.locator('#tooltip').innerText();
      assert.match(tip, /\[truncated\]/);
      assert.match(tip, /could not walk this stack/);
      assert.match(tip, /1,234 sampled stacks/);
      await page.mouse.move(5, 5);
      await page.unroute('**/api/flamegraph?*');
      await page.unroute('**/api/stats');
    });

    await t.test('16. the timeline has a y-axis; the table marks kernel functions', async () => {
      await page.goto('about:blank');
      await page.goto(server.url + '#s=shop&v=2.0&view=top');
      await ready(page);
      await page.waitForFunction(() => window.Ember.app.timeline.yLabel);
      const label = await page.evaluate(() => window.Ember.app.timeline.yLabel);
      /* the oracle: the largest step of the same timeline, from the API */
      const api = await page.evaluate(async () => {
        const t = window.Ember.app.timeline;
        const q = new URLSearchParams({ service: 'shop', version: '2.0', from: String(Math.floor(t.from)), to: String(Math.ceil(t.to)), step: String(t.step / 1000) });
        const j = await (await fetch('api/timeline?' + q)).json();
        return Math.max(...j.points.map((p) => p[1]));
      });
      assert.equal(label.split(' ')[0], api.toLocaleString('en-US'), label);
      /* tcp_sendmsg is a kernel function in the dataset */
      await page.waitForSelector('#top tr[data-fn]');
      const k = page.locator('#top tr[data-fn=tcp_sendmsg]');
      assert.equal(await k.locator('.tag.kernel').innerText(), 'kernel');
      assert.equal(await page.locator('#top tr[data-fn=compute_hash] .tag.kernel').count(), 0);
    });

    await t.test('16. siblings are in the same order in the flame graph and the diff', async () => {
      const order = () => page.evaluate(() => {
        const g = window.Ember.app.flame;
        const out = {};
        for (let i = 0; i < g.n; i++) {
          const p = g.parent[i];
          if (p < 0) continue;
          const key = g.nodes[p].name + '@' + g.depth[p];
          (out[key] = out[key] || []).push(g.nodes[i].name);
        }
        return out;
      });
      await page.goto('about:blank');
      await page.goto(server.url + '#s=shop&v=2.0');
      await ready(page);
      await page.waitForFunction(() => window.Ember.app.flame.n > 3);
      const flame = await order();
      /* /api/diff orders siblings by the larger of their two shares, which for a
       * function that shrank is A's: reversed here, the page must still order by B */
      await rewrite(page, '**/api/diff?*', (j) => {
        const stack = [j.root];
        while (stack.length) {
          const n = stack.pop();
          if (n.children) {
            n.children.reverse();
            stack.push(...n.children);
          }
        }
        return j;
      });
      await page.selectOption('#base', 'v:1.0');
      await page.waitForFunction(() => /A shop 1\.0/.test(document.getElementById('status').textContent));
      const diff = await order();
      let compared = 0;
      for (const key of Object.keys(flame)) {
        if (!diff[key] || flame[key].length < 2) continue;
        /* frames of B only: the diff may add A's frames (zero width, not drawn) */
        assert.deepStrictEqual(diff[key].filter((n) => flame[key].includes(n)), flame[key], 'children of ' + key);
        compared++;
      }
      assert.ok(compared > 0, 'some frame with several children compared');
      await page.unroute('**/api/diff?*');
    });

    await t.test('every tab fits at 1440x900 and 1024x768', async () => {
      for (const size of SIZES) {
        await page.setViewportSize(size);
        await page.goto('about:blank');
        await page.goto(server.url + '#s=shop&v=2.0&cmp=v%3A1.0');
        await ready(page);
        for (const tab of ['[data-view=flame]', '[data-view=top]', '[data-view=sandwich]', '#tab-network', '#tab-requests', '#tab-reports']) {
          await page.click(tab);
          await page.waitForLoadState('networkidle');
          await assertFits(page, tab + ' at ' + size.width + 'x' + size.height);
        }
        /* the flame graph with the table beside it, and the diff's sandwich */
        for (const hash of ['#s=shop&v=2.0&cmp=v%3A1.0&split=1', '#s=shop&v=2.0&cmp=v%3A1.0&view=sandwich&fn=checkout']) {
          await page.goto('about:blank');
          await page.goto(server.url + hash);
          await ready(page);
          await page.waitForLoadState('networkidle');
          await assertFits(page, hash + ' at ' + size.width + 'x' + size.height);
        }
      }
    });

    await t.test('no console errors, page errors or foreign requests', () => {
      assert.deepStrictEqual(problems, []);
    });
  } finally {
    await browser.close();
    server.stop();
  }
});
