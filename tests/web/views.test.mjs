// Browser test of the dashboard's pictures: the job monitor while a backup runs (a progress bar whose
// value grows, rate, time left and elapsed), the charts' time axis (snapshot dates), the space map (a
// rectangle per top directory with its exact bytes) and the change view. Debian's Chromium through
// playwright-core. Screenshots of the three views are kept in tests/artifacts/ (committed, small; refreshed
// only with AFB_UPDATE_SCREENSHOTS=1, see support.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afb, artifacts, keptScreenshot, sampleRepo, serveWithBrowser, startEmulator, tearDown } from './support.mjs';

let repo, server, base, token, browser, emulator, slowConnection;

// 1,234,567 (the dashboard's grouping of exact byte counts).
const grouped = (n) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

const api = (path, init = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) } });

async function loggedIn() {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  await page.goto(`${base}/login`);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${base}/`), page.click('#login')]);
  return page;
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  // Four snapshots a day apart (the sample's default spacing), so the charts' axis shows dates.
  ({ repo, token } = sampleRepo('afb-views-', 2, 4000, 4));
  // A share of 800 small files, written quickly, then served by an emulator that answers every request
  // 400 ms late, so that reading them with the default 64 requests in flight takes about 5 s however
  // fast the machine is (800 / 64 x 0.4 s) and the monitor, which refreshes every second, sees it move.
  const data = join(repo, 'emulator');
  const fast = startEmulator(data);
  const conn = await fast.connection;
  execFileSync(afb, ['gen', '--connection-string', conn, '--share', 'slow', '--files', '800', '--max-file-size', '20000'], { stdio: 'ignore' });
  await new Promise((resolve) => { fast.child.on('exit', resolve); fast.child.kill(); });
  const slow = startEmulator(data, ['--fault-latency-ms', '400']);
  emulator = slow.child;
  slowConnection = await slow.connection;
  ({ server, base, browser } = await serveWithBrowser(repo, '33'.repeat(32)));
});

after(() => tearDown(browser, [server, emulator], [repo]));

test('the job monitor shows a growing progress bar, rate, time left and elapsed, then duration and outcome', async () => {
  const created = await api('/api/v1/tenants/tenant-001/shares', { method: 'POST', body: JSON.stringify({ share: 'slow', connection_string: slowConnection }) });
  assert.ok(created.status < 300, await created.text());
  const page = await loggedIn();
  await page.goto(`${base}/t/tenant-001/s/slow`);
  await Promise.all([page.waitForURL(/\/jobs\/\d+$/), page.click('#start-backup')]);
  // Reading has begun when the bar has a value (a total is known); then it must grow.
  const value = () => page.evaluate(() => {
    const bar = document.querySelector('#job-bar');
    return bar && bar.hasAttribute('value') ? Number(bar.getAttribute('value')) : null;
  });
  await page.waitForFunction(() => {
    const bar = document.querySelector('#job-bar');
    return bar && bar.hasAttribute('value') && Number(bar.getAttribute('value')) < 1000 && document.querySelector('#job-status')?.dataset.state === 'running';
  }, null, { timeout: 60_000, polling: 100 });
  const first = await value();
  await page.screenshot({ path: keptScreenshot('job-monitor.png') });
  assert.match(await page.locator('#job-phase').textContent(), /reading and storing changed files/);
  assert.match(await page.locator('#job-amounts').textContent(), /^[\d,]+ of 800 files · [\d.]+ (B|KiB|MiB) of [\d.]+ (KiB|MiB)$/);
  const timing = await page.locator('#job-timing').textContent();
  assert.match(timing, /(KiB|MiB|B)\/s · [\d.,]+ files\/s/, timing);
  assert.match(timing, /elapsed$/, timing);
  await page.waitForFunction((v) => {
    const bar = document.querySelector('#job-bar');
    return bar && Number(bar.getAttribute('value')) > v;
  }, first, { timeout: 60_000, polling: 100 });
  const second = await value();
  assert.ok(second > first, `the bar grew: ${first} -> ${second}`);

  await page.waitForFunction(() => ['succeeded', 'dead', 'cancelled'].includes(document.querySelector('#job-status')?.dataset.state), null, { timeout: 120_000 });
  assert.equal(await page.locator('#job-state').textContent(), 'succeeded');
  assert.match(await page.locator('#job-timing').textContent(), /^took [\d.]+ (ms|s|min)/);
  assert.match(await page.locator('#job-outcome').textContent(), /800 new, 0 changed, 0 unchanged files; read [\d.]+ (KiB|MiB)/);
  // The API keeps the raw JSON, with the job's times.
  const id = page.url().match(/\/jobs\/(\d+)$/)[1];
  const v = await (await api(`/api/v1/jobs/${id}`)).json();
  assert.equal(v.progress.phase, 'done');
  assert.ok(v.started_at && v.finished_at, JSON.stringify(v));
  await page.close();
});

test('charts put snapshots on a time axis with dates, a legend and exact values on hover', async () => {
  const page = await loggedIn();
  await page.goto(`${base}/t/tenant-001/s/files`);
  const ticks = await page.locator('svg.chart .time-axis text').allTextContents();
  assert.ok(ticks.filter((t) => /^\d{4}-\d{2}-\d{2}$/.test(t)).length >= 3, ticks.join(' | '));
  const legend = await page.locator('svg.chart .legend text').allTextContents();
  assert.ok(legend.includes('bytes (upper)') && legend.includes('files (lower)'), legend.join(' | '));
  const snaps = await (await api('/api/v1/tenants/tenant-001/shares/files/snapshots')).json();
  const list = snaps.snapshots || snaps;
  const last = list[list.length - 1];
  const titles = await page.locator('svg.chart circle title').allTextContents();
  const wanted = `snapshot #${last.snapshot_id} · ${last.created_at.slice(0, 10)}`;
  assert.ok(titles.some((t) => t.startsWith(wanted) && t.includes(`(${grouped(last.totals?.bytes ?? last.bytes)} bytes)`)), `${wanted} in ${titles.join(' | ')}`);
  await page.goto(`${base}/t/tenant-001`);
  assert.ok((await page.locator('svg.chart .legend text').allTextContents()).includes('files'));
  await page.close();
});

test('the space map has a rectangle per top directory with its exact bytes, each a link into the tree', async () => {
  const page = await loggedIn();
  await page.goto(`${base}/t/tenant-001/s/files`);
  await Promise.all([page.waitForURL(/\/map$/), page.click('#space-map-link')]);
  const snapshot = page.url().match(/\/snap\/(\d+)\/map$/)[1];
  // What the API says the top directories hold.
  const listing = await (await api(`/api/v1/tenants/tenant-001/shares/files/snapshots/${snapshot}/browse?path=%2F`)).json();
  const dirs = listing.entries.filter((e) => e.kind === 'dir' && e.size > 0);
  assert.ok(dirs.length >= 2, JSON.stringify(listing.entries.slice(0, 5)));
  const tiles = await page.locator('svg.space-map a.tile[data-depth="1"]').evaluateAll((as) => as.map((a) => ({
    href: a.getAttribute('href'), title: a.querySelector('title').textContent, w: Number(a.querySelector('rect').getAttribute('width')),
  })));
  assert.equal(tiles.length, dirs.length, JSON.stringify(tiles.map((t) => t.title)));
  for (const d of dirs) {
    const t = tiles.find((x) => x.title.startsWith(`/${d.name} · `));
    assert.ok(t, `a rectangle for /${d.name}`);
    assert.ok(t.title.includes(`· ${grouped(d.size)} bytes (`), `${t.title} has ${d.size} bytes`);
    assert.ok(t.w > 0);
  }
  assert.ok(await page.locator('svg.space-map a.tile[data-depth="2"]').count() > 0, 'two levels by default');
  await page.screenshot({ path: keptScreenshot('space-map.png') });
  // Keyboard: a rectangle takes focus; following one opens the tree browser there.
  const biggest = dirs.sort((a, b) => b.size - a.size)[0];
  const link = page.locator('svg.space-map a.tile[data-depth="1"]', { has: page.locator('title', { hasText: `/${biggest.name} · ` }) });
  await link.focus();
  await Promise.all([page.waitForURL(/\/snap\/\d+\?path=/), page.keyboard.press('Enter')]);
  await page.waitForFunction((n) => document.querySelector('#dir-totals')?.textContent.startsWith(`/${n}:`), biggest.name);
  // And back: the tree browser links to the space map of the directory it shows.
  await Promise.all([page.waitForURL(/\/map\?path=/), page.click('#map-link')]);
  await page.waitForFunction((n) => document.querySelector('#map-totals')?.textContent.startsWith(`/${n}:`), biggest.name);
  assert.ok(await page.locator('svg.space-map a.tile').count() > 0);
  await page.close();
});

test('the change view lists the directories with most added, deleted and modified bytes as links', async () => {
  const page = await loggedIn();
  await page.goto(`${base}/t/tenant-001/s/files`);
  await Promise.all([page.waitForURL(/\/changes\?/), page.click('#changes-link')]);
  await page.waitForSelector('#change-totals');
  for (const id of ['added', 'deleted', 'modified']) {
    assert.ok(await page.locator(`#${id} tbody tr`).count() > 0, `${id} rows`);
  }
  // The largest additions come first, with exact bytes on hover; the sum of the list is within the total.
  const added = await page.locator('#added tbody tr td.n[title]').evaluateAll((tds) => tds.map((td) => Number(td.getAttribute('title').replace(/[^0-9]/g, ''))));
  assert.deepEqual([...added].sort((a, b) => b - a), added);
  await page.screenshot({ path: keptScreenshot('change-view.png'), clip: { x: 0, y: 0, width: 1100, height: 560 } });
  const first = page.locator('#added tbody tr a').first();
  const path = await first.textContent();
  await Promise.all([page.waitForURL(/\/snap\/\d+\?path=/), first.click()]);
  await page.waitForFunction((p) => document.querySelector('#dir-totals')?.textContent.startsWith(`${p}:`), path);
  await page.close();
});
