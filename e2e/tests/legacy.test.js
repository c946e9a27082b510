// Follows tables through the 2024 dialect (/v1/shape/{table}) with the official
// @electric-sql/client 0.3.1, alone and side by side with a 1.5.x client.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { followLegacyShape } from '../lib/legacy-shape.js';
import { connectOracle, loadChinook, primaryKeyColumns, selectAll } from '../lib/postgres.js';
import { followShape, TEXT_PARSER } from '../lib/shape.js';
import { startVolt } from '../lib/volt.js';

const CHINOOK_TABLES = [
  'album', 'artist', 'customer', 'employee', 'genre', 'invoice',
  'invoice_line', 'media_type', 'playlist', 'playlist_track', 'track',
];
// A short long-poll timeout makes the clients go through idle live requests (204) as well.
const LONG_POLL_TIMEOUT_MS = 1_000;
const SYNC_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 180_000;

let volt;
let oracle;

before(async () => {
  volt = await startVolt({
    extraArgs: ['--long-poll-timeout-ms', String(LONG_POLL_TIMEOUT_MS), '--allow-shape-deletion'],
  });
  await loadChinook(volt.databaseUrl);
  oracle = await connectOracle(volt.databaseUrl);
}, { timeout: 180_000 });

after(async () => {
  await oracle?.end();
  await volt?.stop();
}, { timeout: 60_000 });

/** Reads `table` with SELECT and waits until the follower's rows equal it. */
async function expectClientMatchesSelect(follower, table, keyColumns, label) {
  const expectedRows = await selectAll(oracle, table, keyColumns);
  await follower.waitUntilRowsEqual(expectedRows, keyColumns, { timeoutMs: SYNC_TIMEOUT_MS, label });
}

test('client 0.3.1 syncs chinook tables to SELECT', { timeout: 300_000 }, async (t) => {
  for (const name of CHINOOK_TABLES) {
    await t.test(name, async (tableTest) => {
      const table = { schema: 'public', name };
      const keyColumns = await primaryKeyColumns(oracle, table);
      const expectedRows = await selectAll(oracle, table, keyColumns);
      assert.ok(expectedRows.length > 0, `Chinook table ${name} is empty in PostgreSQL`);

      const follower = followLegacyShape({ baseUrl: volt.baseUrl, table: name, parser: TEXT_PARSER });
      tableTest.after(() => follower.stop());
      await follower.waitUntilRowsEqual(expectedRows, keyColumns, {
        timeoutMs: SYNC_TIMEOUT_MS,
        label: `initial sync of ${name}`,
      });
      assert.equal(follower.rows.length, expectedRows.length, `row count of ${name}`);
      // The 2024 dialect has no snapshot chunks: one response brings the whole table.
      assert.equal(follower.responseCount(200), 1, `responses for the initial sync of ${name}\n${follower.describeHistory()}`);
      assert.equal(follower.responseCount(409), 0, `must-refetch responses while syncing ${name}`);
    });
  }
});

test('client 0.3.1 follows inserts, updates and deletes', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const table = { schema: 'public', name: 'legacy_items' };
  const keyColumns = ['id'];
  await oracle.query('CREATE TABLE legacy_items (id int PRIMARY KEY, title text, n int)');
  await oracle.query(`INSERT INTO legacy_items VALUES (1, 'one', 10), (2, 'two', NULL)`);

  const follower = followLegacyShape({ baseUrl: volt.baseUrl, table: 'public.legacy_items', parser: TEXT_PARSER });
  t.after(() => follower.stop());
  await expectClientMatchesSelect(follower, table, keyColumns, 'initial sync');

  const steps = [
    ['insert', [`INSERT INTO legacy_items VALUES (3, 'quote " slash / accent é', 30)`]],
    ['update', [`UPDATE legacy_items SET title = 'two, renamed', n = 2 WHERE id = 2`]],
    ['update to NULL', ['UPDATE legacy_items SET n = NULL WHERE id = 1']],
    ['delete', ['DELETE FROM legacy_items WHERE id = 3']],
    ['update of the primary key', ['UPDATE legacy_items SET id = 10 WHERE id = 1']],
    ['several changes in one transaction', [
      'BEGIN',
      `INSERT INTO legacy_items VALUES (4, 'four', 4)`,
      'UPDATE legacy_items SET n = coalesce(n, 0) + 1',
      'DELETE FROM legacy_items WHERE id = 2',
      'COMMIT',
    ]],
  ];
  for (const [name, statements] of steps) {
    await t.test(name, async () => {
      for (const statement of statements) {
        await oracle.query(statement);
      }
      await expectClientMatchesSelect(follower, table, keyColumns, `after ${name}`);
    });
  }
  assert.equal(follower.responseCount(409), 0, `the client had to refetch the shape\n${follower.describeHistory()}`);
});

test('client 0.3.1 resyncs after its shape is deleted', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const table = { schema: 'public', name: 'genre' };
  const keyColumns = await primaryKeyColumns(oracle, table);
  const follower = followLegacyShape({ baseUrl: volt.baseUrl, table: 'genre', parser: TEXT_PARSER });
  t.after(() => follower.stop());
  await expectClientMatchesSelect(follower, table, keyColumns, 'initial sync');
  const firstShapeId = follower.shapeId;
  assert.ok(firstShapeId, 'the client has a shape id');

  const response = await fetch(`${volt.baseUrl}/v1/shape/genre?shape_id=${encodeURIComponent(firstShapeId)}`, { method: 'DELETE' });
  assert.equal(response.status, 202, `DELETE returned ${response.status}: ${await response.text()}`);

  // The live request gets 409, and the client starts over on the new shape.
  await oracle.query(`INSERT INTO genre (genre_id, name) VALUES (1000, 'after the delete')`);
  await follower.waitUntil(
    (rows) => (follower.shapeId !== firstShapeId && rows.length > 0 ? null : `still on shape ${follower.shapeId}`),
    { timeoutMs: SYNC_TIMEOUT_MS, label: 'resync on a new shape' },
  );
  await expectClientMatchesSelect(follower, table, keyColumns, 'after the resync');
  assert.ok(follower.responseCount(409) >= 1, `the client never got 409\n${follower.describeHistory()}`);
});

test('clients 0.3.1 and 1.5.x follow one table together', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const table = { schema: 'public', name: 'shared_items' };
  const keyColumns = ['id'];
  await oracle.query('CREATE TABLE shared_items (id int PRIMARY KEY, title text, done bool NOT NULL DEFAULT false)');
  await oracle.query(`INSERT INTO shared_items VALUES (1, 'one', false), (2, NULL, true)`);

  const legacy = followLegacyShape({ baseUrl: volt.baseUrl, table: 'shared_items', parser: TEXT_PARSER });
  const current = followShape({ baseUrl: volt.baseUrl, table: 'shared_items', parser: TEXT_PARSER });
  t.after(() => {
    legacy.stop();
    current.stop();
  });

  const expectBothMatchSelect = async (label) => {
    const expectedRows = await selectAll(oracle, table, keyColumns);
    await Promise.all([
      legacy.waitUntilRowsEqual(expectedRows, keyColumns, { timeoutMs: SYNC_TIMEOUT_MS, label: `${label} (0.3.1)` }),
      current.waitUntilRowsEqual(expectedRows, keyColumns, { timeoutMs: SYNC_TIMEOUT_MS, label: `${label} (1.5.x)` }),
    ]);
    assert.deepEqual(sortedRows(legacy.rows, keyColumns), sortedRows(current.shape.currentRows, keyColumns), `${label}: rows differ between the clients`);
  };

  await expectBothMatchSelect('initial sync');
  assert.equal(legacy.shapeId, current.stream.shapeHandle, 'both clients follow one shape');

  const steps = [
    `INSERT INTO shared_items VALUES (3, 'three', false)`,
    `UPDATE shared_items SET done = true, title = 'one, done' WHERE id = 1`,
    'DELETE FROM shared_items WHERE id = 2',
    'UPDATE shared_items SET id = 30 WHERE id = 3',
    `INSERT INTO shared_items SELECT g, 'bulk ' || g, g % 2 = 0 FROM generate_series(100, 160) g`,
  ];
  for (const statement of steps) {
    await oracle.query(statement);
    await expectBothMatchSelect(`after ${statement}`);
  }
  assert.equal(legacy.responseCount(409), 0, `the 0.3.1 client had to refetch\n${legacy.describeHistory()}`);
  assert.equal(current.responseCount(409), 0, `the 1.5.x client had to refetch\n${current.describeHistory()}`);
});

function sortedRows(rows, keyColumns) {
  const key = (row) => JSON.stringify(keyColumns.map((column) => row[column]));
  return [...rows].sort((left, right) => key(left).localeCompare(key(right)));
}
