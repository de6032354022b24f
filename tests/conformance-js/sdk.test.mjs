// Conformance of `afb emulator` with the official JavaScript SDK (@azure/storage-file-share, npm), as a
// Node user would call it: each test asserts what the SDK returns against Azure (per Azure's REST and SDK
// documentation). Runs the emulator from AFB_BIN (or target/debug/afb) on a temporary data directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShareServiceClient, ShareFileClient, FileSASPermissions } from '@azure/storage-file-share';
// Where afb is and reading a child's first line: shared with the browser tests.
import { afb, firstLine, root } from '../web/support.mjs';

let data, emulator, service;

// The connection string an emulator prints as its first line on stdout.
const connectionString = (child) => firstLine(child, 'afb emulator');
// One try per request: an answer the SDK would retry is a failure here.
const options = { retryOptions: { maxTries: 1 } };

before(async () => {
  data = mkdtempSync(join(tmpdir(), 'afb-js-'));
  emulator = spawn(afb, ['emulator', '--addr', '127.0.0.1:0', '--data', data], { stdio: ['ignore', 'pipe', 'inherit'] });
  const connection = await connectionString(emulator);
  service = ShareServiceClient.fromConnectionString(connection, options);
});

after(() => {
  emulator?.kill();
  if (data) rmSync(data, { recursive: true, force: true });
});

let shares = 0;
async function newShare() {
  const share = service.getShareClient(`js-${process.pid}-${++shares}`);
  await share.create();
  return share;
}

// The RestError a call rejects with.
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return { status: e.statusCode, code: e.code ?? e.details?.errorCode };
  }
  assert.fail('the call succeeded');
}

const bytes = (n, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251));

test('create, upload in several ranges, download whole and a range, properties and metadata', async () => {
  const share = await newShare();
  const dir = share.getDirectoryClient('docs');
  await dir.create({ metadata: { Team: 'ops' } });
  const file = dir.getFileClient('report.bin');
  const content = bytes(10_000);
  await file.uploadData(content, { rangeSize: 4096, metadata: { Owner: 'Ana', project: 'x' } });
  assert.deepEqual(await file.downloadToBuffer(), content);
  assert.deepEqual(await file.downloadToBuffer(5000, 100), content.subarray(5000, 5100));
  const p = await file.getProperties();
  assert.equal(p.contentLength, 10_000);
  // Node's HTTP client lower-cases header names, so the SDK reports metadata names in lower case.
  assert.deepEqual(Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k.toLowerCase(), v])), { owner: 'Ana', project: 'x' });
  assert.ok(p.fileId && p.fileParentId, 'FileId and parent FileId are returned');
  assert.ok(p.fileLastWriteOn instanceof Date && p.fileCreatedOn instanceof Date);
  const ranges = await file.getRangeList();
  assert.deepEqual(ranges.rangeList, [{ start: 0, end: 9999 }]);
  const d = await dir.getProperties();
  assert.equal(Object.values(d.metadata)[0], 'ops');
});

test('list a directory with a prefix and in pages', async () => {
  const share = await newShare();
  const dir = share.getDirectoryClient('many');
  await dir.create();
  for (let i = 0; i < 7; i++) await dir.getFileClient(`f${i}.txt`).uploadData(bytes(10 + i));
  await dir.getDirectoryClient('fsub').create();
  await dir.getFileClient('other.txt').uploadData(bytes(3));
  const names = [];
  let pages = 0;
  for await (const page of dir.listFilesAndDirectories({ prefix: 'f' }).byPage({ maxPageSize: 3 })) {
    pages++;
    for (const f of page.segment.fileItems) names.push([f.name, f.properties.contentLength]);
    for (const d of page.segment.directoryItems) names.push([d.name, 'dir']);
  }
  assert.ok(pages >= 3, `pages ${pages}`);
  assert.deepEqual(names.sort(), [...Array.from({ length: 7 }, (_, i) => [`f${i}.txt`, 10 + i]), ['fsub', 'dir']].sort());
});

test('rename a file and a directory, delete, and 404 with the codes Azure sends', async () => {
  const share = await newShare();
  const dir = share.getDirectoryClient('a');
  await dir.create();
  const file = dir.getFileClient('x.txt');
  await file.uploadData(bytes(50));
  const { destinationFileClient } = await file.rename('a/y.txt');
  assert.deepEqual(await destinationFileClient.downloadToBuffer(), bytes(50));
  assert.equal((await failure(file.getProperties())).status, 404);
  const { destinationDirectoryClient } = await dir.rename('b');
  assert.deepEqual(await destinationDirectoryClient.getFileClient('y.txt').downloadToBuffer(), bytes(50));
  await destinationDirectoryClient.getFileClient('y.txt').delete();
  const gone = await failure(destinationDirectoryClient.getFileClient('y.txt').downloadToBuffer());
  assert.deepEqual(gone, { status: 404, code: 'ResourceNotFound' });
  const noParent = await failure(share.getDirectoryClient('nope').getFileClient('z').create(1));
  assert.deepEqual(noParent, { status: 404, code: 'ParentNotFound' });
});

test('a file lease keeps writers without it out; a share lease keeps the share from being deleted', async () => {
  const share = await newShare();
  const file = share.rootDirectoryClient.getFileClient('leased.txt');
  await file.uploadData(bytes(100));
  const lease = file.getShareLeaseClient();
  const { leaseId } = await lease.acquireLease();
  assert.ok(leaseId);
  // Azure's codes: no lease id on a leased file, another lease id, a lease id where no lease is.
  assert.deepEqual(await failure(file.uploadRange(bytes(10), 0, 10)), { status: 412, code: 'LeaseIdMissing' });
  const otherId = '11111111-2222-3333-4444-555555555555';
  const mismatch = await failure(file.uploadRange(bytes(10), 0, 10, { leaseAccessConditions: { leaseId: otherId } }));
  assert.deepEqual(mismatch, { status: 412, code: 'LeaseIdMismatchWithFileOperation' });
  await file.uploadRange(bytes(10, 7), 0, 10, { leaseAccessConditions: { leaseId } });
  assert.equal((await file.getProperties()).leaseState, 'leased');
  await lease.releaseLease();
  const noLease = await failure(file.uploadRange(bytes(10), 0, 10, { leaseAccessConditions: { leaseId } }));
  assert.deepEqual(noLease, { status: 412, code: 'LeaseNotPresentWithFileOperation' });
  await file.uploadRange(bytes(10, 9), 0, 10);
  assert.deepEqual((await file.downloadToBuffer()).subarray(0, 10), bytes(10, 9));

  // An infinite share lease: deleting the share needs it; breaking it (no break period: an infinite
  // lease breaks at once) frees the share.
  const shareLease = share.getShareLeaseClient();
  await shareLease.acquireLease(-1);
  assert.deepEqual(await failure(share.delete()), { status: 412, code: 'LeaseIdMissing' });
  await shareLease.breakLease();
  assert.equal((await share.getProperties()).leaseState, 'broken');
  await share.delete();
});

test('copy a file within the account and put a range from a URL', async () => {
  const share = await newShare();
  const src = share.rootDirectoryClient.getFileClient('src.bin');
  await src.uploadData(bytes(20_000, 3));
  const copy = share.rootDirectoryClient.getFileClient('copy.bin');
  const poller = await copy.startCopyFromURL(src.url);
  assert.equal(poller.copyStatus, 'success');
  assert.deepEqual(await copy.downloadToBuffer(), bytes(20_000, 3));
  assert.equal((await copy.getProperties()).copyStatus, 'success');

  const target = share.rootDirectoryClient.getFileClient('target.bin');
  await target.create(8192);
  const sas = await src.generateSasUrl({ permissions: FileSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3600_000) });
  await target.uploadRangeFromURL(sas, 1000, 4096, 2048);
  const got = await target.downloadToBuffer();
  assert.deepEqual(got.subarray(4096, 6144), bytes(20_000, 3).subarray(1000, 3048));
  assert.deepEqual(got.subarray(0, 4096), Buffer.alloc(4096));
});

test('a SAS URL reads what it allows until it expires', async () => {
  const share = await newShare();
  const file = share.rootDirectoryClient.getFileClient('shared.txt');
  await file.uploadData(bytes(300));
  const good = await file.generateSasUrl({ permissions: FileSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3600_000) });
  assert.deepEqual(await new ShareFileClient(good, options).downloadToBuffer(), bytes(300));
  const readOnly = await failure(new ShareFileClient(good, options).uploadRange(bytes(5), 0, 5));
  assert.equal(readOnly.status, 403);
  const expired = await file.generateSasUrl({ permissions: FileSASPermissions.parse('r'), startsOn: new Date(Date.now() - 7200_000), expiresOn: new Date(Date.now() - 3600_000) });
  const refused = await failure(new ShareFileClient(expired, options).downloadToBuffer());
  assert.deepEqual(refused, { status: 403, code: 'AuthenticationFailed' });
});

test('a share snapshot keeps what the file held when it was taken', async () => {
  const share = await newShare();
  const file = share.rootDirectoryClient.getFileClient('v.txt');
  await file.uploadData(bytes(64, 1));
  const { snapshot } = await share.createSnapshot();
  assert.ok(snapshot);
  await file.uploadData(bytes(80, 2));
  const old = share.withSnapshot(snapshot).rootDirectoryClient.getFileClient('v.txt');
  assert.deepEqual(await old.downloadToBuffer(), bytes(64, 1));
  assert.deepEqual(await file.downloadToBuffer(), bytes(80, 2));
  const listed = [];
  for await (const s of service.listShares({ prefix: share.name, includeSnapshots: true })) listed.push(s.snapshot ?? '');
  assert.deepEqual(listed.sort(), ['', snapshot].sort());
  assert.equal((await failure(old.uploadRange(bytes(4), 0, 4))).status, 400);
});

test('handles are listed (none open) and force-closing them closes none', async () => {
  const share = await newShare();
  const file = share.rootDirectoryClient.getFileClient('h.txt');
  await file.uploadData(bytes(10));
  const handles = [];
  for await (const h of file.listHandles()) handles.push(h);
  assert.deepEqual(handles, []);
  const closed = await file.forceCloseAllHandles();
  assert.equal(closed.closedHandlesCount, 0);
});

test('over HTTPS with the emulator\'s certificate trusted through NODE_EXTRA_CA_CERTS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'afb-js-tls-'));
  const tls = spawn(afb, ['emulator', '--addr', '127.0.0.1:0', '--data', dir, '--https'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const connection = await connectionString(tls);
    assert.match(connection, /^DefaultEndpointsProtocol=https;.*FileEndpoint=https:/);
    // Node reads NODE_EXTRA_CA_CERTS at start, so the SDK runs in a child process that trusts the
    // certificate the emulator made (DIR/tls/cert.pem); it uploads, downloads and prints what it read.
    const script = `
      import { ShareServiceClient } from '@azure/storage-file-share';
      const share = ShareServiceClient.fromConnectionString(process.env.CONN).getShareClient('tls');
      await share.create();
      const f = share.rootDirectoryClient.getFileClient('t.txt');
      await f.uploadData(Buffer.from('over tls'));
      process.stdout.write((await f.downloadToBuffer()).toString());`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, CONN: connection, NODE_EXTRA_CA_CERTS: join(dir, 'tls', 'cert.pem') },
    });
    assert.equal(out.toString(), 'over tls');
  } finally {
    tls.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
