/*
 * network.test.js - the Network tab in a real browser (run with `node --test`).
 *
 * Data: fill_db's profiles plus tests/tools/fill_net.c's TCP metrics for
 * service "shop": three peers (the local service redis, an external
 * database 10.0.0.7:5432, a client 10.1.1.1), and a spike of 50
 * retransmits on the database link 30 minutes before now.  Chromium
 * (playwright-core) opens the tab for shop over the last hour and checks
 * what it shows: the peer table against /api/net (sorting by retransmits
 * puts the database first), the charts drawn, the topology with one caller
 * and two callees.  Then it drags across the spike on the retransmit chart:
 * the page must switch to the flame graph of that window, whose sample
 * count is what /api/flamegraph answers for the same window.  No console
 * errors or requests to other hosts are allowed.  Screenshots go to
 * $TEST_OUT (default build/test-output/web/).
 */
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { missing, launch, startServer, watchedPage } = require('./browser.js');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.resolve(ROOT, process.env.TEST_OUT || path.join('build', 'test-output', 'web'));
const SPIKE_MIN = 30; /* tests/tools/fill_net.c */

const why = missing();
if (why) console.log('SKIPPED: ' + why);

test('network tab', { skip: why || false, timeout: 120000 }, async (t) => {
  fs.mkdirSync(OUT, { recursive: true });
  const server = await startServer(['fill_net']);
  const browser = await launch({ viewport: { width: 1366, height: 900 } });
  const problems = [];
  try {
    const page = await watchedPage(browser.context, server.url, problems);
    const shot = (name) => page.screenshot({ path: path.join(OUT, name + '.png'), fullPage: true });

    await page.goto(server.url + '#s=shop&r=1h');
    await page.waitForFunction(() => document.body.dataset.ready === '1');

    await t.test('the tab shows the peers, charts and topology of the service', async () => {
      await page.click('#tab-network');
      await page.waitForFunction(() => document.getElementById('view-network').dataset.loaded === '1');
      assert.ok(await page.locator('#view-network').isVisible(), 'network view shown');
      assert.ok(await page.locator('#view-flame').isHidden(), 'flame view hidden');
      const sel = await page.evaluate(() => window.Ember.app.selection());
      const q = new URLSearchParams({ service: 'shop', from: String(sel.from) });
      const api = await page.evaluate((u) => fetch(u).then((r) => r.json()), 'api/net?' + q.toString());
      const rows = await page.locator('#net-peers tbody tr').count();
      assert.equal(rows, api.peers.length);
      assert.equal(rows, 3);
      const names = await page.locator('#net-peers tbody td.fn').allInnerTexts();
      assert.deepStrictEqual(names.slice().sort(), ['10.0.0.7:5432', '10.1.1.1', 'redis']);
      /* sort by retransmits: the database link first */
      await page.click('#net-peers th button:has-text("Retransmits")');
      assert.equal(await page.locator('#net-peers tbody td.fn').first().innerText(), '10.0.0.7:5432');
      const retrans = await page.locator('#net-peers tbody tr').first().locator('td').nth(8).innerText();
      assert.equal(retrans, '50');
      /* charts have pixels; the topology has its two sides */
      for (const id of ['net-bytes', 'net-errors', 'net-rtt', 'net-topo']) {
        const inked = await page.evaluate((i) => {
          const c = document.getElementById(i);
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let k = 3; k < d.length; k += 4) if (d[k]) n++;
          return n;
        }, id);
        assert.ok(inked > 200, id + ' is drawn (' + inked + ' pixels)');
      }
      const sides = await page.evaluate(() => [document.getElementById('view-network').dataset.callers,
        document.getElementById('view-network').dataset.callees]);
      assert.deepStrictEqual(sides, ['1', '2']);
      assert.match(await page.locator('#status').innerText(), /3 peers/);
      await shot('network');
    });

    await t.test('brushing the retransmit spike opens the flame graph of that window', async () => {
      const spike = Math.floor(Date.now() / 60000) * 60000 - SPIKE_MIN * 60000;
      const box = await page.evaluate(() => {
        const c = window.Ember.network.charts()[1];
        const r = c.canvas.getBoundingClientRect();
        return { left: r.left, top: r.top, width: r.width, height: r.height, from: c.from, to: c.to };
      });
      const x = (tm) => box.left + ((tm - box.from) / (box.to - box.from)) * box.width;
      const y = box.top + box.height / 2;
      await page.mouse.move(x(spike - 90e3), y);
      await page.mouse.down();
      await page.mouse.move(x(spike), y, { steps: 5 });
      await page.mouse.move(x(spike + 150e3), y, { steps: 5 });
      await page.mouse.up();
      await page.waitForFunction(() => document.body.dataset.ready === '1' && !document.getElementById('view-flame').hidden);
      await page.waitForFunction(() => /samples/.test(document.getElementById('status').textContent));
      const st = await page.evaluate(() => window.Ember.app.state());
      assert.ok(st.from <= spike && st.to >= spike + 10e3, 'window ' + st.from + '..' + st.to + ' holds the spike at ' + spike);
      assert.ok(st.to - st.from < 10 * 60e3, 'a narrow window: ' + (st.to - st.from) / 1000 + ' s');
      assert.equal(st.view, 'flame');
      assert.ok(await page.locator('#view-network').isHidden(), 'network view hidden');
      const q = new URLSearchParams({ service: 'shop', from: String(st.from), to: String(st.to) });
      const flame = await page.evaluate((u) => fetch(u).then((r) => r.json()), 'api/flamegraph?' + q.toString());
      assert.ok(flame.total > 0, 'samples in the window');
      const shown = await page.evaluate(() => window.Ember.app.flame.totalValue);
      assert.equal(shown, flame.total);
      assert.match(page.url(), /from=\d+&to=\d+/);
      await shot('network-brushed-flame');
    });
  } finally {
    await browser.close();
    server.stop();
  }
  assert.deepStrictEqual(problems, []);
});
