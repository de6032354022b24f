// What both browser tests share: where afb and Chromium are, starting the emulator and `afb serve` as
// child processes, and launching Debian's Chromium through playwright-core (never a downloaded browser).
// Not a test file itself (node --test picks only *.test.mjs here).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const afb = process.env.AFB_BIN || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug', 'afb');
// Screenshots of the dashboard (gitignored scratch, but for the three views kept in the repository).
export const artifacts = join(root, 'tests', 'artifacts');

// Where a kept screenshot goes: over the committed file only with AFB_UPDATE_SCREENSHOTS=1, else beside
// it as NAME.latest.png (ignored), so a test run leaves the checkout clean.
export function keptScreenshot(name) {
  return join(artifacts, process.env.AFB_UPDATE_SCREENSHOTS ? name : name.replace(/\.png$/, '.latest.png'));
}

// The first line a child process prints on stdout.
export function firstLine(child, what) {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const i = out.indexOf('\n');
      if (i >= 0) resolve(out.slice(0, i).trim());
    });
    child.on('exit', (code) => reject(new Error(`${what} exited ${code} before printing a line`)));
  });
}

// `afb emulator` on a free port: the child and a promise of its connection string (its first line).
export function startEmulator(dataDir, extra = []) {
  const child = spawn(afb, ['emulator', '--addr', '127.0.0.1:0', '--data', dataDir, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { child, connection: firstLine(child, 'afb emulator') };
}

// `afb serve` on a free port with `env`: the child and its base URL, read from the line it logs.
export async function startServer(repo, env) {
  const server = spawn(afb, ['serve', '--repo', repo, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'], env });
  const base = await new Promise((resolve, reject) => {
    let err = '';
    server.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/afb serve: (http:\/\/[0-9.:]+)\s/); // the whole address, not a chunk of it
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`afb serve exited ${code}: ${err}`)));
  });
  return { server, base };
}

// Debian's Chromium, headless (CHROMIUM overrides the path).
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

// A sample repository (`afb api-sample`: `tenants` tenants of one share each, `snapshots` snapshots a day
// apart of `nodes` nodes) in a new temporary directory named after `prefix`, and an operator token for it.
export function sampleRepo(prefix, tenants, nodes, snapshots) {
  const repo = mkdtempSync(join(tmpdir(), prefix));
  execFileSync(afb, ['api-sample', '--repo', repo, '--tenants', `${tenants}`, '--nodes', `${nodes}`, '--snapshots', `${snapshots}`], { stdio: 'inherit' });
  const token = execFileSync(afb, ['api-token', '--repo', repo, '--operator']).toString().trim();
  return { repo, token };
}

// `afb serve` over `repo`, its embedded runner running data jobs with the master key `masterKeyHex`,
// and a browser: the server child, its base URL and the browser.
export async function serveWithBrowser(repo, masterKeyHex) {
  const { server, base } = await startServer(repo, { ...process.env, AFB_MASTER_KEY: masterKeyHex });
  return { server, base, browser: await launchBrowser() };
}

// Closes the browser, kills the child processes and removes the directories (any may be undefined).
export async function tearDown(browser, children, dirs) {
  await browser?.close();
  for (const c of children) c?.kill();
  for (const d of dirs) if (d) rmSync(d, { recursive: true, force: true });
}
