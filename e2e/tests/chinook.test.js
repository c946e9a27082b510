// Syncs every table of the Chinook sample database and compares it with SELECT.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connectOracle, loadChinook, primaryKeyColumns, selectAll } from '../lib/postgres.js';
import { followShape, TEXT_PARSER } from '../lib/shape.js';
import { startVolt } from '../lib/volt.js';

const CHINOOK_TABLES = [
  'album', 'artist', 'customer', 'employee', 'genre', 'invoice',
  'invoice_line', 'media_type', 'playlist', 'playlist_track', 'track',
];
const SYNC_TIMEOUT_MS = 60_000;

let volt;
let oracle;

before(async () => {
  volt = await startVolt();
  await loadChinook(volt.databaseUrl);
  oracle = await connectOracle(volt.databaseUrl);
}, { timeout: 180_000 });

after(async () => {
  await oracle?.end();
  await volt?.stop();
}, { timeout: 60_000 });

test('chinook tables sync to SELECT', { timeout: 300_000 }, async (t) => {
  const result = await oracle.query(
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
  );
  const tableNames = result.rows.map((row) => row.tablename);
  assert.deepEqual(tableNames, CHINOOK_TABLES, 'the public schema does not have the Chinook tables');

  for (const name of tableNames) {
    await t.test(name, async (tableTest) => {
      const table = { schema: 'public', name };
      const keyColumns = await primaryKeyColumns(oracle, table);
      const expectedRows = await selectAll(oracle, table, keyColumns);
      assert.ok(expectedRows.length > 0, `Chinook table ${name} is empty in PostgreSQL`);

      const follower = followShape({ baseUrl: volt.baseUrl, table: name, parser: TEXT_PARSER });
      tableTest.after(() => follower.stop());

      await follower.waitUntilRowsEqual(expectedRows, keyColumns, {
        timeoutMs: SYNC_TIMEOUT_MS,
        label: `initial sync of ${name}`,
      });
      assert.equal(follower.shape.currentRows.length, expectedRows.length, `row count of ${name}`);
      assert.equal(follower.responseCount(409), 0, `must-refetch responses while syncing ${name}`);
    });
  }
});
