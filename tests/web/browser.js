/*
 * browser.js - launch Debian's Chromium through playwright-core.
 *
 * playwright-core ships no browser: the tests drive the system's
 * /usr/bin/chromium (package chromium) headless, with a fresh profile
 * directory and everything that would reach the network switched off.
 * Shared by ui.test.js and render_bench.js.
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

module.exports = { CHROMIUM, missing, launch };
