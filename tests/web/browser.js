/*
 * browser.js - launch Debian's Chromium through playwright-core.
 *
 * playwright-core ships no browser: the tests drive the system's
 * /usr/bin/chromium (package chromium) headless, with a fresh profile
 * directory and everything that would reach the network switched off.
 * Shared by ui.test.js, requests.test.js and render_bench.js; serveFilled()
 * serves a database the test tools filled.
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
 * Fill a fresh database with the given tools of BUILD/tools (each run as
 * TOOL DB NOW_MS, the same NOW for all) and serve it with serve_db.
 * Resolves to {url, stop()}; stop() also removes the database.
 */
async function serveFilled(build, fillers) {
  const { spawn, execFileSync } = require('child_process');
  const tools = fillers.concat(['serve_db']).map((t) => path.join(build, 'tools', t));
  for (const f of tools) {
    if (!fs.existsSync(f)) throw new Error(f + ' not built (make build-tests)');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ember-web-'));
  const db = path.join(dir, 'ember.db');
  const now = String(Date.now());
  for (const fill of tools.slice(0, -1)) execFileSync(fill, [db, now], { stdio: ['ignore', 'ignore', 'inherit'] });
  const child = spawn(tools[tools.length - 1], [db, '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
 * A page of context that records, in the returned array, console errors
 * and warnings, page errors and requests to any other origin than the
 * server's (refused).  The tests end by asserting the array is empty.
 */
async function guardedPage(context, serverUrl) {
  const problems = [];
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push('console ' + m.type() + ': ' + m.text());
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  const origin = new URL(serverUrl).origin;
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('data:')) return route.continue();
    problems.push('request to another host: ' + u);
    return route.abort();
  });
  return { page, problems };
}

module.exports = { CHROMIUM, missing, launch, serveFilled, guardedPage };
