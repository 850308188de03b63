// Drives Debian's headless Chromium through the Prefect UI for tests/test_ui_browser.py.
// Usage: node ui_check.mjs SPEC.json  -> prints one JSON object (what each page showed).
// SPEC: {base, chromium, userDataDir, screenshotDir, timeoutMs,
//        pages: [{name, path, expect: [text...], table: bool, screenshot: bool, images: n}]}
// images: wait for n data: images to load; report each <img> (scheme, natural width/height, complete).
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const timeout = spec.timeoutMs ?? 30000;
// console_errors / page_errors: console.error messages and uncaught exceptions, each with the
// page it happened on; the test asserts both are empty.
const result = { pages: [], console_errors: [], page_errors: [] };
let current = '(start)';

const context = await chromium.launchPersistentContext(spec.userDataDir, {
  executablePath: spec.chromium,
  headless: true,
  viewport: { width: 1440, height: 1000 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--disable-breakpad', '--disable-crash-reporter'],
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const where = m.location()?.url ? ` (${m.location().url})` : '';
    result.console_errors.push(`${current}: ${m.text().slice(0, 300)}${where}`);
  });
  page.on('pageerror', (e) => { result.page_errors.push(`${current}: ${String(e).slice(0, 300)}`); });
  for (const p of spec.pages) {
    const out = { name: p.name, url: spec.base + p.path, found: {}, table_rows: null, text: '' };
    const t0 = Date.now();
    current = p.name;
    try {
      await page.goto(out.url, { waitUntil: 'domcontentloaded' });
      for (const text of p.expect ?? []) {
        try {
          await page.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout });
          out.found[text] = true;
        } catch {
          out.found[text] = false;
        }
      }
      if (p.table) {
        try {
          await page.locator('table tbody tr').first().waitFor({ state: 'visible', timeout });
        } catch { /* counted as 0 below */ }
        out.table_rows = await page.locator('table tbody tr').count();
        out.table_headers = await page.locator('table thead th').allInnerTexts();
      }
      if (p.images) {
        // images: wait for at least n data: images to finish loading, then report every <img>
        try {
          await page.waitForFunction((n) => {
            const imgs = [...document.querySelectorAll('img')].filter((i) => i.src.startsWith('data:'));
            return imgs.length >= n && imgs.every((i) => i.complete);
          }, p.images, { timeout });
        } catch { /* reported below as what was there */ }
        out.images = await page.evaluate(() => [...document.querySelectorAll('img')].map((i) => ({
          scheme: i.src.split(':')[0], natural_width: i.naturalWidth, natural_height: i.naturalHeight,
          complete: i.complete, alt: i.alt })));
      }
      await page.waitForTimeout(500); // let charts and fonts settle for the screenshot
      out.text = (await page.locator('body').innerText()).slice(0, 4000);
      if (p.screenshot) {
        out.screenshot = `${spec.screenshotDir}/${p.name}.png`;
        await page.screenshot({ path: out.screenshot, fullPage: false });
      }
    } catch (e) {
      out.error = String(e).slice(0, 500);
    }
    out.seconds = (Date.now() - t0) / 1000;
    result.pages.push(out);
  }
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
