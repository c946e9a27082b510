// The official client against a Volt started with --secret: it syncs with `params: { secret }`
// and stops with a 401 error without it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Shape, ShapeStream } from '@electric-sql/client';

import { connectOracle } from '../lib/postgres.js';
import { startVolt } from '../lib/volt.js';

const SECRET = 'e2e secret/with+signs';
const WAIT_TIMEOUT_MS = 30_000;

let volt;
let oracle;

before(async () => {
  volt = await startVolt({ extraArgs: ['--secret', SECRET] });
  oracle = await connectOracle(volt.databaseUrl);
  await oracle.query('CREATE TABLE items (id int PRIMARY KEY, title text)');
  await oracle.query(`INSERT INTO items VALUES (1, 'one'), (2, 'two')`);
}, { timeout: 90_000 });

after(async () => {
  await oracle?.end();
  await volt?.stop();
}, { timeout: 60_000 });

/** Rejects after WAIT_TIMEOUT_MS with `description` in the message, so a stuck wait names itself. */
function withTimeout(promise, description) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${description}`)), WAIT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Rows of `items` in the client's Shape, sorted by id. */
function clientRows(shape) {
  return [...shape.currentValue.values()].sort((a, b) => a.id - b.id);
}

test('client with the secret syncs', async () => {
  const controller = new AbortController();
  const stream = new ShapeStream({
    url: `${volt.baseUrl}/v1/shape`,
    params: { table: 'items', secret: SECRET },
    signal: controller.signal,
  });
  const shape = new Shape(stream);
  try {
    await withTimeout(shape.rows, 'the initial sync');
    assert.deepEqual(clientRows(shape), [{ id: 1, title: 'one' }, { id: 2, title: 'two' }]);

    const changed = new Promise((resolve) => {
      const unsubscribe = shape.subscribe(({ rows }) => {
        if (rows.some((row) => row.id === 3)) {
          unsubscribe();
          resolve();
        }
      });
    });
    await oracle.query(`INSERT INTO items VALUES (3, 'three')`);
    await withTimeout(changed, 'the live insert');

    // The oracle returns every value as text.
    const { rows } = await oracle.query('SELECT id, title FROM items ORDER BY id');
    assert.deepEqual(clientRows(shape), rows.map((row) => ({ id: Number(row.id), title: row.title })));
  } finally {
    shape.unsubscribeAll();
    controller.abort();
  }
});

test('client without the secret fails with 401', async () => {
  const controller = new AbortController();
  const failed = new Promise((resolve) => {
    new ShapeStream({
      url: `${volt.baseUrl}/v1/shape`,
      params: { table: 'items' },
      signal: controller.signal,
      // Returning nothing stops the stream, so the error reaches the test at once.
      onError: (error) => resolve(error),
    }).subscribe(() => {});
  });
  try {
    const error = await withTimeout(failed, 'the client error');
    assert.equal(error.status, 401, String(error));
    assert.match(JSON.stringify(error.json ?? error.text ?? error.message), /Invalid API secret/);
  } finally {
    controller.abort();
  }
});
