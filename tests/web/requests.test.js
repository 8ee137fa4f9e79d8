/*
 * requests.test.js - browser test of the Requests tab (run with `node --test`).
 *
 * A database filled by tests/tools/fill_db.c (samples) and
 * tests/tools/fill_spans.c (spans of service "shop": GET /orders/{id} at
 * 600 a minute with 1% 500s, POST /checkout, a MySQL statement at 1200
 * calls a minute with two slow calls, Redis GET; three slow spans) is served
 * by tests/tools/serve_db.c and Debian's Chromium, driven by
 * playwright-core, opens the Requests tab like a user: the endpoints with
 * their rate, errors, latency and sparkline; the database calls with their
 * slow calls; the slow requests with their text; and the click through
 * from an endpoint to the flame graph of that endpoint and window.
 * Assertions are on what the page shows; no console errors, page errors or
 * requests to other hosts are allowed.  Screenshots go to $TEST_OUT.
 */
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { missing, launch, startServer, watchedPage } = require('./browser.js');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.resolve(ROOT, process.env.TEST_OUT || path.join('build', 'test-output', 'web'));

const why = missing();
if (why) console.log('SKIPPED: ' + why);

/* The rows of a table as arrays of cell texts. */
function rows(page, id) {
  return page.evaluate((id) => [...document.querySelectorAll('#' + id + ' tbody tr')]
    .map((tr) => [...tr.children].map((td) => td.textContent)), id);
}

test('Requests tab', { skip: why || false, timeout: 120000 }, async (t) => {
  fs.mkdirSync(OUT, { recursive: true });
  const server = await startServer(['fill_spans']);
  const browser = await launch({ viewport: { width: 1366, height: 768 } });
  const problems = [];
  try {
    const page = await watchedPage(browser.context, server.url, problems);
    const shot = (name) => page.screenshot({ path: path.join(OUT, name + '.png'), fullPage: true });

    await t.test('the tab lists the endpoints the service serves', async () => {
      await page.goto(server.url + '#s=shop&r=6h');
      await page.waitForFunction(() => document.body.dataset.ready === '1');
      await page.click('#tab-requests');
      await page.waitForFunction(() => document.body.dataset.requests);
      assert.ok(await page.locator('#view-requests').isVisible());
      assert.ok(!(await page.locator('#view-flame').isVisible()), 'the flame graph steps aside');
      const eps = await rows(page, 'req-endpoints');
      const orders = eps.find((r) => r[0] === 'GET /orders/{id}');
      assert.ok(orders, 'GET /orders/{id} listed: ' + JSON.stringify(eps));
      assert.equal(orders[1], 'http');
      assert.equal(orders[3], '1.00%', 'error rate');
      assert.equal(orders[4], '5.0 ms', 'p50');
      assert.equal(orders[6], '36,000', 'requests');
      /* 36,000 requests over the 6 h window */
      assert.equal(orders[2], '1.67/s', 'rate');
      const checkout = eps.find((r) => r[0] === 'POST /checkout');
      assert.ok(checkout && checkout[3] === '0.00%' && checkout[4] === '120 ms', JSON.stringify(checkout));
      assert.equal(eps.length, 2, 'only the served endpoints: ' + JSON.stringify(eps));
      const lines = await page.locator('#req-endpoints svg.spark polyline').count();
      assert.ok(lines >= 3, 'sparklines drawn (with the errors of /orders): ' + lines);
      assert.match(await page.locator('#status').innerText(), /shop · 39,600 requests served, 90,000 calls made/);
      await shot('requests');
    });

    await t.test('database and outgoing calls, with their slow calls', async () => {
      const calls = await rows(page, 'req-calls');
      const sel = calls.find((r) => r[0] === 'SELECT * FROM orders WHERE id = ?');
      assert.ok(sel, 'the statement listed: ' + JSON.stringify(calls));
      assert.deepStrictEqual(sel.slice(1), ['mysql', '10.0.0.9:3306', '72,000', '2.0 ms', '2.0 ms', '0', '2']);
      const get = calls.find((r) => r[0] === 'GET' && r[1] === 'redis');
      assert.ok(get && get[3] === '18,000' && get[4] === '300 µs' && get[7] === '0', JSON.stringify(get));
    });

    await t.test('the slowest requests with their text', async () => {
      const slow = await rows(page, 'req-slow');
      assert.equal(slow.length, 3);
      assert.deepStrictEqual(slow.map((r) => r[1]), ['900 ms', '800 ms', '650 ms']);
      assert.equal(slow[0][6], 'SELECT * FROM orders WHERE id = 7');
      assert.equal(slow[2][3], 'POST /checkout');
      assert.equal(slow[2][6], 'POST /checkout?cart=991');
    });

    await t.test('an endpoint opens the flame graph of its CPU in the same window', async () => {
      await page.click('#req-endpoints a.endpoint >> text="GET /orders/{id}"');
      await page.waitForURL(/ep=GET/);
      assert.equal(new URLSearchParams(new URL(page.url()).hash.slice(1)).get('ep'), 'GET /orders/{id}');
      assert.match(page.url(), /from=\d+&to=\d+/);
      await page.waitForFunction(() => /serving GET \/orders\/\{id\}/.test(document.getElementById('status').textContent));
      assert.ok(await page.locator('#view-flame').isVisible(), 'flame graph shown');
      assert.ok(!(await page.locator('#view-requests').isVisible()), 'the Requests tab is hidden');
      /* no CPU samples were stored for this endpoint in the synthetic data */
      assert.match(await page.locator('#status').innerText(), /0 samples/);
      await shot('requests-flame');
    });

    await t.test('no console errors, page errors or foreign requests', () => {
      assert.deepStrictEqual(problems, []);
    });
  } finally {
    await browser.close();
    server.stop();
  }
});
