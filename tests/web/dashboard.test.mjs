// Browser test of the dashboard: Debian's Chromium driven by playwright-core (never a downloaded browser).
// Builds a sample repository with `afb api-sample`, issues an operator token, starts `afb serve` on a free
// port, then logs in and drills down overview -> tenant -> share -> snapshot -> directory, views a diff and
// checks hostile file names show as text. Screenshots go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const afb = process.env.AFB_BIN || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug', 'afb');
const artifacts = join(root, 'tests', 'artifacts');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

let repo, server, base, token, browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  repo = mkdtempSync(join(tmpdir(), 'afb-web-'));
  execFileSync(afb, ['api-sample', '--repo', repo, '--tenants', '3', '--nodes', '3000', '--snapshots', '3'], { stdio: 'inherit' });
  token = execFileSync(afb, ['api-token', '--repo', repo, '--operator']).toString().trim();
  server = spawn(afb, ['serve', '--repo', repo, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  base = await new Promise((resolve, reject) => {
    let err = '';
    server.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/afb serve: (http:\/\/[0-9.:]+)/);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`afb serve exited ${code}: ${err}`)));
  });
  browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (repo) rmSync(repo, { recursive: true, force: true });
});

test('log in, drill down tenant, share, snapshot, directory, and view a diff', async () => {
  const page = await browser.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });

  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login$/);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${base}/`), page.click('#login')]);
  await page.waitForSelector('#overview');
  assert.equal(await page.locator('#overview tbody tr').count(), 4); // 3 tenants' files + tenant-000/names
  await page.screenshot({ path: join(artifacts, '1-overview.png'), fullPage: true });

  await page.click('#overview a.tenant >> text=tenant-001');
  await page.waitForSelector('#shares');
  assert.ok((await page.locator('svg.chart').count()) >= 1);
  await page.screenshot({ path: join(artifacts, '2-tenant.png'), fullPage: true });

  await page.click('#shares a.share >> text=files');
  await page.waitForSelector('#snapshots');
  assert.ok((await page.locator('svg.chart').count()) >= 3);
  await page.screenshot({ path: join(artifacts, '3-share.png'), fullPage: true });

  await page.click('#snapshots a.snapshot >> nth=0');
  await page.waitForSelector('#entries');
  await page.screenshot({ path: join(artifacts, '4-snapshot.png'), fullPage: true });
  const dir = page.locator('#entries a.dir').first();
  const name = (await dir.textContent()).replace(/\/$/, '');
  await dir.click();
  await page.waitForFunction((n) => document.querySelector('#dir-totals')?.textContent.includes(`/${n}:`), name);
  await page.screenshot({ path: join(artifacts, '5-directory.png'), fullPage: true });

  await page.goBack();
  await page.goto(`${base}/t/tenant-001/s/files`);
  await Promise.all([page.waitForSelector('#diff-summary'), page.click('#diff')]);
  assert.ok((await page.locator('#changes tbody tr').count()) > 0);
  await page.screenshot({ path: join(artifacts, '6-diff.png'), fullPage: true });

  // Hostile names are text, never markup.
  await page.goto(`${base}/t/tenant-000/s/names/snap/2?path=${encodeURIComponent('/<script>')}`);
  await page.waitForSelector('#entries');
  const names = await page.locator('#entries td.file').allTextContents();
  assert.ok(names.includes('<script>alert(1).txt'), names.join(', '));
  assert.ok(names.includes('<img src=x onerror=alert(2)>.txt'), names.join(', '));
  await page.screenshot({ path: join(artifacts, '7-hostile-names.png'), fullPage: true });
  assert.deepEqual(dialogs, []);
  await page.close();
});
