/*
 * ui.test.js - browser tests of Ember's web UI (run with `node --test`).
 *
 * A known dataset (tests/tools/fill_db.c: service "shop", version 2.0
 * spends 33.33% of its samples in compute_hash against 8.77% in 1.0,
 * legacy_cache_lookup vanished) is served by tests/tools/serve_db.c (the
 * real HTTP server and API, no BPF needed) and Debian's Chromium, driven by
 * playwright-core, clicks through the page like a user: pick the service
 * and two versions, read the diff, zoom, search, sort the table, open the
 * sandwich view, download pprof, reload the URL, switch the profile type.  Assertions are on what
 * the page shows (text, tooltip, URL, downloaded bytes); no console errors,
 * page errors or requests to other hosts are allowed during the run.
 * Screenshots go to $TEST_OUT (default build/test-output/web/).
 *
 * Environment: EMBER_BUILD (default build) locates build/tools/; or
 * EMBER_WEB_URL points at an already running server with the same data.
 */
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { missing, launch, startServer, watchedPage, framePoint } = require('./browser.js');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.resolve(ROOT, process.env.TEST_OUT || path.join('build', 'test-output', 'web'));

const why = missing();
if (why) console.log('SKIPPED: ' + why);

const text = (page, sel) => page.locator(sel).innerText();

test('web UI', { skip: why || false, timeout: 180000 }, async (t) => {
  fs.mkdirSync(OUT, { recursive: true });
  const server = await startServer();
  const browser = await launch({ viewport: { width: 1366, height: 768 } });
  const problems = [];
  try {
    const page = await watchedPage(browser.context, server.url, problems);
    const shot = (name) => page.screenshot({ path: path.join(OUT, name + '.png') });

    await t.test('the page loads and lists the services', async () => {
      await page.goto(server.url);
      await page.waitForFunction(() => document.body.dataset.ready === '1');
      const services = await page.locator('#service option').allInnerTexts();
      assert.ok(services.some((s) => s.startsWith('shop')), 'shop listed: ' + services);
      assert.ok(services.some((s) => s.startsWith('search')), 'search listed: ' + services);
      await page.waitForFunction(() => /samples/.test(document.getElementById('status').textContent));
    });

    await t.test('picking the service and two versions shows the diff', async () => {
      await page.selectOption('#service', 'shop');
      await page.selectOption('#version', '2.0');
      await page.selectOption('#base', 'v:1.0');
      await page.waitForFunction(() => /A shop 1\.0: 20,520 samples/.test(document.getElementById('status').textContent));
      assert.match(await text(page, '#status'), /B shop 2\.0: 27,000 samples/);
      assert.ok(await page.locator('#legend').isVisible(), 'legend shown');
      const legend = await text(page, '#scale');
      assert.match(legend, /Change of total share/);
      assert.match(legend, /less in B/);
      assert.match(legend, /more in B/);
      assert.match(legend, /\+30 pp/, 'scale rounded up from the largest change (+25.1 pp): ' + legend);
      assert.equal(await page.locator('#legend .swatch').count(), 13);
      assert.ok(await page.locator('#pprof-base').isVisible(), 'base pprof link shown');
      /* the top of the diff: all > main, widths from B */
      const top = await page.evaluate(() => {
        const g = window.Ember.app.flame;
        return [g.nodes[0].name, g.nodes[1].name, g.w[0]];
      });
      assert.deepStrictEqual(top, ['all', 'main', 27000]);
      /* the slowed function's tooltip */
      const p = await framePoint(page, 'compute_hash');
      assert.ok(p, 'compute_hash drawn');
      await page.mouse.move(p.x, p.y);
      await page.waitForSelector('#tooltip:not([hidden])');
      const tip = await text(page, '#tooltip');
      assert.match(tip, /compute_hash/);
      assert.match(tip, /src\/compute_hash\.cc:\d+/);
      assert.match(tip, /B: 9,000 samples \(33\.33%\)/);
      assert.match(tip, /A: 1,800 samples \(8\.77%\)/);
      assert.match(tip, /change: \+24\.56 pp total/);
      await shot('diff');
      await page.mouse.move(5, 5);
      /* the function that vanished in B is listed */
      assert.match(await text(page, '#vanished summary'), /Vanished in B \(1\)/);
      await page.click('#vanished summary');
      assert.match(await text(page, '#vanished ul'), /legacy_cache_lookup/);
      await page.click('#vanished summary');
    });

    await t.test('the colour-blind palette and the negated view', async () => {
      const before = await page.locator('#legend .swatch').last().evaluate((e) => e.style.background);
      await page.selectOption('#palette', 'cb');
      await page.waitForFunction((b) => document.querySelector('#legend .swatch:last-child').style.background !== b, before);
      await page.click('#vanished summary');
      await page.click('#vanished ul button');
      await page.waitForFunction(() => /of A/.test(document.getElementById('match').textContent));
      assert.ok(await page.isChecked('#negated'), 'negated view on');
      assert.match(await text(page, '#match'), /0\.00% of B, 7\.02% of A/);
      assert.ok(await framePoint(page, 'legacy_cache_lookup'), 'vanished frame drawn (widths from A)');
      await shot('diff-negated');
      await page.uncheck('#negated');
      await page.fill('#search', '');
      await page.selectOption('#palette', 'rb');
      await page.waitForFunction(() => !window.Ember.app.state().neg && !window.Ember.app.state().q);
    });

    await t.test('the top table ranks the slowed function first', async () => {
      await page.click('[data-view=top]');
      await page.waitForSelector('#top tr[data-fn]');
      const first = page.locator('#top tbody tr').first();
      assert.equal(await first.getAttribute('data-fn'), 'compute_hash');
      const diffCell = first.locator('td.diff').first();
      assert.match(await diffCell.innerText(), /^\+24\.56 pp$/);
      assert.match(await diffCell.getAttribute('class'), /more/);
      await shot('top');
      await page.click('#top th[data-key=total] button');
      await page.waitForFunction(() => {
        const r = document.querySelector('#top tbody tr');
        return r && r.dataset.fn === 'main';
      });
      assert.match(page.url(), /sort=total/);
    });

    await t.test('clicking a frame zooms; the breadcrumbs follow', async () => {
      await page.click('[data-view=flame]');
      await page.waitForFunction(() => window.Ember.app.flame.n > 0 && !document.getElementById('view-flame').hidden);
      const p = await framePoint(page, 'checkout');
      await page.mouse.click(p.x, p.y);
      await page.waitForFunction(() => /checkout/.test(document.getElementById('crumbs').textContent));
      const crumbs = await page.locator('#crumbs button:not(.chip)').allInnerTexts();
      assert.deepStrictEqual(crumbs, ['all', 'main', 'serve', 'handle_request', 'checkout']);
      assert.match(page.url(), /z=main&z=serve&z=handle_request&z=checkout/);
      await shot('zoom');
      /* a breadcrumb zooms back out */
      await page.click('#crumbs button:has-text("serve")');
      assert.equal(await page.evaluate(() => window.Ember.app.flame.focusNode.name), 'serve');
      await page.keyboard.press('Escape');
      assert.equal(await page.evaluate(() => window.Ember.app.flame.focusNode.name), 'main');
      const again = await framePoint(page, 'checkout');
      await page.mouse.click(again.x, again.y);
    });

    await t.test('search highlights matches and shows their share', async () => {
      await page.fill('#search', 'compute_hash');
      await page.waitForFunction(() => /Matched/.test(document.getElementById('match').textContent));
      assert.match(await text(page, '#match'), /Matched: 33\.33% of B, 8\.77% of A \(\+24\.56 pp\)/);
      await shot('search');
    });

    await t.test('the URL reproduces the view', async () => {
      const url = page.url();
      assert.match(url, /s=shop/);
      assert.match(url, /v=2\.0/);
      assert.match(url, /cmp=v%3A1\.0/);
      assert.match(url, /q=compute_hash/);
      await page.reload();
      await page.waitForFunction(() => document.body.dataset.ready === '1' &&
        /Matched/.test(document.getElementById('match').textContent));
      assert.equal(page.url(), url);
      assert.equal(await page.inputValue('#version'), '2.0');
      assert.equal(await page.inputValue('#base'), 'v:1.0');
      assert.equal(await page.inputValue('#search'), 'compute_hash');
      assert.match(await text(page, '#match'), /Matched: 33\.33% of B/);
      const crumbs = await page.locator('#crumbs button:not(.chip)').allInnerTexts();
      assert.deepStrictEqual(crumbs, ['all', 'main', 'serve', 'handle_request', 'checkout']);
      /* a fresh tab with the same link shows the same */
      const other = await browser.context.newPage();
      other.on('pageerror', (e) => problems.push('page error: ' + e.message));
      await other.goto(url);
      await other.waitForFunction(() => /Matched: 33\.33% of B/.test(document.getElementById('match').textContent));
      await other.close();
    });

    await t.test('pprof downloads are gzip files', async () => {
      for (const sel of ['#pprof', '#pprof-base']) {
        const [download] = await Promise.all([page.waitForEvent('download'), page.click(sel)]);
        const file = path.join(OUT, (sel === '#pprof' ? 'selection' : 'base') + '.pb.gz');
        await download.saveAs(file);
        const bytes = fs.readFileSync(file);
        assert.ok(bytes.length > 20, sel + ': ' + bytes.length + ' bytes');
        assert.equal(bytes[0], 0x1f);
        assert.equal(bytes[1], 0x8b);
        const proto = zlib.gunzipSync(bytes);
        assert.ok(proto.length > 0, 'profile.proto inside');
        assert.ok(proto.includes(Buffer.from(sel === '#pprof' ? 'apply_discount' : 'legacy_cache_lookup')),
          sel + ': the version-specific function is in the profile');
      }
    });

    await t.test('sandwich view of a function', async () => {
      await page.fill('#search', '');
      await page.click('#crumbs button.chip'); /* callers & callees of the focus (checkout) */
      await page.waitForFunction(() => /checkout/.test(document.getElementById('sw-title').textContent));
      /* a diff: the sandwich shows both sides */
      assert.match(await text(page, '#sw-title'), /checkout\s+total 42\.67% of B \(11,520 samples\), 17\.54% of A/);
      assert.match(page.url(), /view=sandwich/);
      assert.match(page.url(), /fn=checkout/);
      const callers = await page.evaluate(() => window.Ember.app.sandwich.callers.nodes.map((n) => n.name));
      assert.deepStrictEqual(callers, ['checkout', 'handle_request', 'serve', 'main']);
      const callees = await page.evaluate(() => window.Ember.app.sandwich.callees.nodes.map((n) => n.name));
      assert.ok(callees.includes('compute_hash') && callees.includes('tcp_sendmsg'), callees.join());
      const p = await framePoint(page, 'handle_request', 'callers');
      await page.mouse.move(p.x, p.y);
      await page.waitForSelector('#tooltip:not([hidden])');
      assert.match(await text(page, '#tooltip'), /handle_request/);
      await shot('sandwich');
      await page.mouse.move(5, 5);
    });

    await t.test('comparing two time ranges picked on the timeline', async () => {
      await page.click('[data-view=flame]');
      await page.selectOption('#version', '');
      /* the timeline is fetched and drawn again for this mode: drag once it is
       * (networkidle alone does not wait: the page reached it long ago) */
      const drawn = page.waitForResponse((r) => /api\/timeline/.test(r.url()));
      await page.selectOption('#base', 'range');
      await drawn;
      await page.waitForLoadState('networkidle');
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const drag = async (f0, f1) => {
        /* measured each time: the header may wrap once the base pprof link shows */
        const box = await page.locator('#timeline').boundingBox();
        await page.mouse.move(box.x + box.width * f0, box.y + 30);
        await page.mouse.down();
        await page.mouse.move(box.x + box.width * f1, box.y + 30, { steps: 4 });
        await page.mouse.up();
      };
      await drag(0.08, 0.42);  /* A: the first half, version 1.0 */
      await page.waitForURL(/afrom=\d+&ato=\d+/, { timeout: 5000 });
      assert.match(page.url(), /afrom=\d+&ato=\d+/);
      await page.waitForLoadState('networkidle');
      await drag(0.58, 0.92);  /* B: the second half, version 2.0 */
      await page.waitForURL(/[#&]from=\d+&to=\d+/, { timeout: 5000 });
      assert.match(page.url(), /from=\d+&to=\d+/);
      await page.waitForFunction(() => /A shop all versions/.test(document.getElementById('status').textContent));
      await page.fill('#search', '^compute_hash$');
      await page.waitForFunction(() => /Matched/.test(document.getElementById('match').textContent));
      assert.match(await text(page, '#match'), /Matched: 33\.33% of B, 8\.77% of A/);
      await shot('ranges');
    });

    await t.test('usable at 1366x768: nothing overflows or overlaps', async () => {
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 1366, 'page width ' + width);
      const overlaps = await page.evaluate(() => {
        const items = [...document.querySelectorAll('.bar label, .bar .actions > :not([hidden]), .tabs > *, .legend > :not([hidden])')];
        const boxes = items.map((e) => [e, e.getBoundingClientRect()]).filter(([, r]) => r.width > 0);
        const out = [];
        for (let i = 0; i < boxes.length; i++) {
          for (let j = i + 1; j < boxes.length; j++) {
            const [a, ra] = boxes[i];
            const [b, rb] = boxes[j];
            if (a.contains(b) || b.contains(a)) continue;
            if (ra.left < rb.right - 1 && rb.left < ra.right - 1 && ra.top < rb.bottom - 1 && rb.top < ra.bottom - 1) {
              out.push((a.id || a.textContent.trim().slice(0, 20)) + ' / ' + (b.id || b.textContent.trim().slice(0, 20)));
            }
          }
        }
        return out;
      });
      assert.deepStrictEqual(overlaps, []);
    });

    await t.test('the profile selector asks for off-CPU data and reads durations', async () => {
      const asked = page.waitForRequest((r) => /\/api\/(flamegraph|diff)\?.*type=offcpu/.test(r.url()));
      await page.selectOption('#ptype', 'offcpu');
      await asked;
      await page.waitForFunction(() => /[#&]t=offcpu/.test(location.hash));
      const read = await page.evaluate(() => [
        window.Ember.profileType.value(1500000000, 'offcpu'),
        window.Ember.profileType.value(2500000, 'offcpu'),
        window.Ember.profileType.value(1234, 'cpu'),
      ]);
      assert.deepStrictEqual(read, ['1.50 s off-CPU', '2.5 ms off-CPU', '1,234 samples']);
      const back = page.waitForRequest((r) => /\/api\/(flamegraph|diff)\?/.test(r.url()) && !/type=/.test(r.url()));
      await page.selectOption('#ptype', 'cpu');
      await back;
      assert.ok(!/t=offcpu/.test(await page.evaluate(() => location.hash)), 'cpu is the default: no t= in the URL');
    });

    await t.test('no console errors, page errors or foreign requests', () => {
      assert.deepStrictEqual(problems, []);
    });
  } finally {
    await browser.close();
    server.stop();
  }
});
