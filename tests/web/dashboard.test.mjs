// Browser test of the dashboard: Debian's Chromium driven by playwright-core (never a downloaded browser).
// Builds a sample repository with `afb api-sample`, issues an operator token, starts `afb serve` on a free
// port, then logs in and drills down overview -> tenant -> share -> snapshot -> directory, views a diff and
// checks hostile file names show as text; starts jobs and follows them in the job monitor; adds a share
// from a tenant's page and backs it up. Screenshots go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afb, artifacts, sampleRepo, serveWithBrowser, startEmulator, tearDown } from './support.mjs';

let repo, server, base, token, browser, emulator, shareConnection, restoreDir;

const ended = ['succeeded', 'dead', 'cancelled'];

// The job monitor's buttons, read in one go (htmx swaps between reads cannot mix two states).
function monitorButtons(page) {
  return page.evaluate(() => ({
    state: document.querySelector('#job-status')?.dataset.state,
    cancel: document.querySelector('#cancel') !== null,
    startDisabled: ['#start-backup', '#start-scan'].map((id) => document.querySelector(id)?.disabled),
  }));
}

// On a job monitor just opened: while the job is unfinished it offers Cancel and holds the Start buttons
// back; wait until it ends (htmx polls), then Cancel is gone and the Start buttons are usable again.
async function followJob(page, screenshot) {
  const first = await monitorButtons(page);
  if (!ended.includes(first.state)) {
    assert.deepEqual({ cancel: first.cancel, startDisabled: first.startDisabled }, { cancel: true, startDisabled: [true, true] }, JSON.stringify(first));
  }
  await page.waitForFunction((e) => e.includes(document.querySelector('#job-status')?.dataset.state), ended, { timeout: 120_000 });
  await page.screenshot({ path: join(artifacts, screenshot), fullPage: true });
  const last = await monitorButtons(page);
  assert.deepEqual({ cancel: last.cancel, startDisabled: last.startDisabled }, { cancel: false, startDisabled: [false, false] }, JSON.stringify(last));
  return last.state;
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  ({ repo, token } = sampleRepo('afb-web-', 3, 3000, 3));
  // A real Azure Files share (the project's emulator, its own process) for the jobs the dashboard starts.
  const started = startEmulator(join(repo, 'emulator'));
  emulator = started.child;
  shareConnection = await started.connection;
  execFileSync(afb, ['gen', '--connection-string', shareConnection, '--share', 'files', '--files', '60', '--max-file-size', '200000'], { stdio: 'ignore' });
  restoreDir = mkdtempSync(join(tmpdir(), 'afb-web-restore-'));
  ({ server, base, browser } = await serveWithBrowser(repo, '11'.repeat(32)));
});

after(() => tearDown(browser, [server, emulator], [restoreDir, repo]));

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
  assert.ok((await page.locator('svg.chart').count()) >= 2); // growth (bytes and files) and changes
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

// Jobs from the dashboard: a backup started on the share page is followed in the job monitor (htmx polls
// its status every second) until it ends; the restore form (CSRF-protected) starts a restore job.
// The server runs the data handlers against a share in the project's emulator: the backup must succeed,
// and so must the restore of it into a local directory.
test('start a backup and a restore from the dashboard and follow them in the job monitor', async () => {
  const api = (path, init = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) } });
  const conn = shareConnection;
  const put = await api('/api/v1/tenants/tenant-002/shares/files/settings', { method: 'PUT', body: JSON.stringify({ connection_string: conn }) });
  assert.equal(put.status, 200, await put.text());

  const page = await browser.newPage();
  await page.goto(`${base}/login`);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${base}/`), page.click('#login')]);
  await page.goto(`${base}/t/tenant-002/s/files`);
  await Promise.all([page.waitForURL(/\/jobs\/\d+$/), page.click('#start-backup')]);
  const jobUrl = page.url();
  assert.match(await page.locator('h1').textContent(), /backup of tenant-002\/files/);
  await page.screenshot({ path: join(artifacts, '8-job-running.png'), fullPage: true });
  // The status fragment is swapped in by htmx until the job ends; then Cancel goes, Start comes back.
  const state = await followJob(page, '9-job-finished.png');
  assert.equal(await page.locator('#job-state').textContent(), state);
  const id = jobUrl.match(/\/jobs\/(\d+)$/)[1];
  const v = await (await api(`/api/v1/jobs/${id}`)).json();
  assert.equal(v.state, state);
  assert.deepEqual(v.payload, { tenant: 'tenant-002', share: 'files' });
  assert.equal(state, 'succeeded', JSON.stringify(v));
  assert.ok(v.progress, 'the backup reported progress');

  // The restore form starts a restore job into a local directory.
  await page.goto(`${base}/t/tenant-002/s/files`);
  await page.fill('#restore-form input[name=path]', '/');
  await page.check('#restore-form input[value=local]');
  await page.fill('#restore-form input[name=target_path]', restoreDir);
  await Promise.all([page.waitForURL(/\/jobs\/\d+$/), page.click('#restore')]);
  assert.match(await page.locator('h1').textContent(), /restore of tenant-002\/files/);
  assert.ok((await page.locator('#job-payload').textContent()).includes(restoreDir));
  assert.equal(await followJob(page, '10-restore-job.png'), 'succeeded');
  assert.ok(readdirSync(restoreDir).length > 0, 'the restore wrote files');
  await page.goto(`${base}/jobs`);
  assert.ok((await page.locator('#jobs tbody tr').count()) >= 2);
  await page.screenshot({ path: join(artifacts, '11-jobs.png'), fullPage: true });
  await page.close();
});

// A share registered from the tenant page ("Add share", CSRF-protected like every form) before it has any
// snapshot: listed as never backed up, then backed up from its page against a second share in the same
// emulator; the backup must succeed and give the share its first snapshot.
test('add a share on the tenant page and back it up', async () => {
  execFileSync(afb, ['gen', '--connection-string', shareConnection, '--share', 'added', '--files', '30', '--max-file-size', '50000'], { stdio: 'ignore' });
  const page = await browser.newPage();
  await page.goto(`${base}/login`);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${base}/`), page.click('#login')]);
  await page.goto(`${base}/t/tenant-001`);
  await page.fill('#add-share-form input[name=share]', 'added');
  await page.fill('#add-share-form input[name=connection_string]', shareConnection);
  await Promise.all([page.waitForURL(`${base}/t/tenant-001/s/added`), page.click('#add-share')]);
  await page.waitForSelector('#never-backed-up');
  assert.equal(await page.locator('#restore-form').count(), 0, 'nothing to restore yet');
  assert.ok(!(await page.content()).includes('AccountKey='), 'the secret is never shown');
  await page.screenshot({ path: join(artifacts, '12-added-share.png'), fullPage: true });

  await page.goto(`${base}/`);
  const row = page.locator('#overview tbody tr', { has: page.locator('a.share', { hasText: /^added$/ }) });
  assert.equal(await row.count(), 1);
  assert.match(await row.locator('td.last').textContent(), /never backed up/);
  await page.goto(`${base}/t/tenant-001`);
  assert.match(await page.locator('#shares tbody tr', { has: page.locator('a.share', { hasText: /^added$/ }) }).locator('td.last').textContent(), /never backed up/);

  await page.goto(`${base}/t/tenant-001/s/added`);
  await Promise.all([page.waitForURL(/\/jobs\/\d+$/), page.click('#start-backup')]);
  assert.match(await page.locator('h1').textContent(), /backup of tenant-001\/added/);
  const state = await followJob(page, '13-added-share-backup.png');
  const id = page.url().match(/\/jobs\/(\d+)$/)[1];
  const v = await (await fetch(`${base}/api/v1/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })).json();
  assert.equal(state, 'succeeded', JSON.stringify(v));

  await page.goto(`${base}/t/tenant-001/s/added`);
  await page.waitForSelector('#snapshots');
  assert.equal(await page.locator('#snapshots tbody tr').count(), 1);
  assert.equal(await page.locator('#never-backed-up').count(), 0);
  await page.close();
});
