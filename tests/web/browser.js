/*
 * browser.js - launch Debian's Chromium through playwright-core.
 *
 * playwright-core ships no browser: the tests drive the system's
 * /usr/bin/chromium (package chromium) headless, with a fresh profile
 * directory and everything that would reach the network switched off.
 * Shared by the *.test.js files and render_bench.js; startServer() fills a database with the test tools and
 * serves it.
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/* Why the browser tests cannot run here, or null when they can. */
function missing() {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
  } catch (e) {
    return CHROMIUM + ' not found (Debian package chromium)';
  }
  try {
    require.resolve('playwright-core');
  } catch (e) {
    return 'playwright-core not installed (cd tests/web && npm ci)';
  }
  return null;
}

/*
 * A browser context on a fresh profile directory (playwright takes the
 * --user-data-dir through launchPersistentContext).  Returns {context,
 * close()}; close() also removes the profile.  options go to playwright
 * (viewport, acceptDownloads, ...).
 */
async function launch(options) {
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ember-chromium-'));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ];
  const context = await chromium.launchPersistentContext(profile, Object.assign({
    executablePath: CHROMIUM, headless: true, args, acceptDownloads: true,
    viewport: { width: 1366, height: 768 },
  }, options || {}));
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/*
 * Fill a database with tests/tools/fill_db (then each of the extra tools
 * named, e.g. 'fill_net') and serve it with tests/tools/serve_db; resolves
 * to {url, stop()}.  EMBER_BUILD (default build) locates build/tools/;
 * EMBER_WEB_URL points at an already running server instead.
 */
async function startServer(extra) {
  const { spawn, execFileSync } = require('child_process');
  if (process.env.EMBER_WEB_URL) return { url: process.env.EMBER_WEB_URL, stop() {} };
  const root = path.resolve(__dirname, '..', '..');
  const build = path.resolve(root, process.env.EMBER_BUILD || 'build');
  const fills = ['fill_db'].concat(extra || []).map((t) => path.join(build, 'tools', t));
  const serve = path.join(build, 'tools', 'serve_db');
  for (const f of fills.concat([serve])) {
    if (!fs.existsSync(f)) throw new Error(f + ' not built (make build-tests)');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ember-web-'));
  const db = path.join(dir, 'ember.db');
  const now = String(Date.now());
  for (const f of fills) execFileSync(f, [db, now], { stdio: ['ignore', 'ignore', 'inherit'] });
  const child = spawn(serve, [db, '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('serve_db printed no URL')), 10000);
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /serving (http:\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error('serve_db exited with ' + code)));
  });
  return {
    url,
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/*
 * A new page of context whose console errors and warnings, page errors and
 * requests to any other origin than url's are pushed to problems (the
 * requests are refused): the tests assert it stays empty.
 */
async function watchedPage(context, url, problems) {
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push('console ' + m.type() + ': ' + m.text());
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  const origin = new URL(url).origin;
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('data:')) return route.continue();
    problems.push('request to another host: ' + u);
    return route.abort();
  });
  return page;
}

const FLAME_ROW = 18; /* px per flame-graph row (web/flame.js) */

/*
 * Where a named frame is drawn in a flame graph of the page (viewport px):
 * graph is 'flame' (default) or a side of the sandwich ('callers', 'callees').
 */
function framePoint(page, name, graph) {
  return page.evaluate(([name, graph, row]) => {
    const g = graph === 'flame' ? window.Ember.app.flame : window.Ember.app.sandwich[graph];
    const f = g.focus;
    let i = -1;
    for (let k = f; k < g.end[f]; k++) {
      if (g.nodes[k].name === name) {
        i = k;
        break;
      }
    }
    if (i < 0) return null;
    const r = g.canvas.getBoundingClientRect();
    const scale = r.width / g.w[f];
    const rows = g.rows();
    const depth = g.opts.inverted ? rows - 1 - g.depth[i] : g.depth[i];
    return {
      x: r.left + (g.x[i] - g.x[f]) * scale + Math.min((g.w[i] * scale) / 2, 20),
      y: r.top + depth * row + row / 2,
    };
  }, [name, graph || 'flame', FLAME_ROW]);
}

module.exports = { CHROMIUM, FLAME_ROW, missing, launch, startServer, watchedPage, framePoint };

