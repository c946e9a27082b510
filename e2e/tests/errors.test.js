// Invalid Shape API requests, sent with plain fetch, and the health endpoint.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connectOracle } from '../lib/postgres.js';
import { startVolt } from '../lib/volt.js';

let volt;

before(async () => {
  volt = await startVolt();
  const oracle = await connectOracle(volt.databaseUrl);
  try {
    await oracle.query('CREATE TABLE items (id int PRIMARY KEY, title text)');
    await oracle.query(`INSERT INTO items VALUES (1, 'one')`);
  } finally {
    await oracle.end();
  }
}, { timeout: 90_000 });

after(async () => {
  await volt?.stop();
}, { timeout: 60_000 });

/** Sends GET {baseUrl}{path} and returns the status, the headers and the body parsed as JSON. */
async function getJson(path) {
  const response = await fetch(`${volt.baseUrl}${path}`);
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`GET ${path} returned ${response.status} with a body that is not JSON: ${JSON.stringify(text)}`);
  }
  return { status: response.status, headers: response.headers, body, text };
}

/**
 * Sends GET `path` and checks for a 400 whose body is
 * {"message":"Invalid request","errors":{"<parameter>":[...]}} with only that parameter.
 */
async function expectInvalidParameter(path, parameter) {
  const { status, headers, body, text } = await getJson(path);
  const context = `GET ${path} returned ${status} ${text}`;
  assert.equal(status, 400, context);
  assert.match(headers.get('content-type') ?? '', /^application\/json/, context);
  assert.equal(body.message, 'Invalid request', context);
  assert.deepEqual(Object.keys(body.errors ?? {}), [parameter], context);
  const messages = body.errors[parameter];
  assert.ok(Array.isArray(messages), context);
  assert.ok(messages.length > 0, context);
  for (const message of messages) {
    assert.equal(typeof message, 'string', context);
    assert.ok(message.length > 0, context);
  }
  return body;
}

test('unknown table is rejected', async () => {
  const body = await expectInvalidParameter('/v1/shape?table=nope&offset=-1', 'table');
  assert.match(JSON.stringify(body), /table/);
});

test('missing offset is rejected', async () => {
  await expectInvalidParameter('/v1/shape?table=items', 'offset');
});

test('malformed offsets are rejected', async () => {
  for (const offset of ['abc', '0_-1']) {
    await expectInvalidParameter(`/v1/shape?table=items&offset=${encodeURIComponent(offset)}`, 'offset');
  }
});

test('offset without handle is rejected', async () => {
  await expectInvalidParameter('/v1/shape?table=items&offset=0_0', 'handle');
});

test('live with offset -1 is rejected', async () => {
  await expectInvalidParameter('/v1/shape?table=items&offset=-1&live=true', 'live');
});

test('valid initial request succeeds', async () => {
  const path = '/v1/shape?table=items&offset=-1';
  const { status, headers, body, text } = await getJson(path);
  const context = `GET ${path} returned ${status} ${text}`;
  assert.equal(status, 200, context);
  assert.ok(headers.get('electric-handle'), `electric-handle header missing: ${context}`);
  assert.ok(headers.get('electric-offset'), `electric-offset header missing: ${context}`);
  assert.ok(headers.get('electric-schema'), `electric-schema header missing: ${context}`);
  assert.ok(Array.isArray(body), context);
  const rows = body.filter((message) => message.headers?.operation === 'insert');
  assert.deepEqual(rows.map((message) => message.value), [{ id: '1', title: 'one' }], context);
});

test('unknown handle gets must-refetch', async () => {
  const path = '/v1/shape?table=items&handle=nope-1&offset=0_0';
  const { status, headers, body, text } = await getJson(path);
  const context = `GET ${path} returned ${status} ${text}`;
  assert.equal(status, 409, context);
  assert.deepEqual(body, [{ headers: { control: 'must-refetch' } }], context);
  const handle = headers.get('electric-handle');
  assert.ok(handle, `electric-handle header missing: ${context}`);
  assert.notEqual(handle, 'nope-1', context);
});

test('health reports active', async () => {
  const { status, body, text } = await getJson('/v1/health');
  assert.equal(status, 200, `GET /v1/health returned ${status} ${text}`);
  assert.deepEqual(body, { status: 'active' });
});
