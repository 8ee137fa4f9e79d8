const { launch, startServer } = require('./browser.js');
(async () => {
  const server = await startServer();
  const b = await launch({ viewport: { width: 1366, height: 768 } });
  const page = await b.context.newPage();
  await page.goto(server.url + '#s=shop&cmp=range&afrom=1&ato=2');
  await page.waitForFunction(() => document.body.dataset.ready === '1');
  console.log(await page.evaluate(() => [...document.querySelectorAll('.bar > *, .pickers > *, .actions > *')].map((e) => (e.id || e.className || e.textContent.slice(0, 10)) + ' ' + Math.round(e.getBoundingClientRect().left) + '-' + Math.round(e.getBoundingClientRect().right) + ' top ' + Math.round(e.getBoundingClientRect().top))));
  await b.close(); server.stop();
})();
