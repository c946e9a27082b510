// Oracle test: three clients follow the pgbench tables through a TPC-B-like run and must end
// with exactly the rows that SELECT returns.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connectOracle, selectAll } from '../lib/postgres.js';
import { runProgramChecked } from '../lib/programs.js';
import { followShape, TEXT_PARSER } from '../lib/shape.js';
import { startVolt } from '../lib/volt.js';

const SCALE = 1;
const BENCHMARK_CLIENTS = 4;
const BENCHMARK_SECONDS = 20;
const INITIAL_SYNC_TIMEOUT_MS = 120_000;
const CATCH_UP_TIMEOUT_MS = 60_000;

// pgbench creates these primary keys with `pgbench -i`.
const FOLLOWED_TABLES = [
  { table: { schema: 'public', name: 'pgbench_accounts' }, keyColumns: ['aid'] },
  { table: { schema: 'public', name: 'pgbench_tellers' }, keyColumns: ['tid'] },
  { table: { schema: 'public', name: 'pgbench_branches' }, keyColumns: ['bid'] },
];

let volt;
let oracle;

before(async () => {
  volt = await startVolt();
  oracle = await connectOracle(volt.databaseUrl);
}, { timeout: 90_000 });

after(async () => {
  await oracle?.end();
  await volt?.stop();
}, { timeout: 60_000 });

test('pgbench run matches SELECT', { timeout: 420_000 }, async (t) => {
  await runProgramChecked('pgbench', ['-i', '-q', '-s', String(SCALE), volt.databaseUrl], { timeoutMs: 120_000 });

  const followers = FOLLOWED_TABLES.map(({ table }) => followShape({
    baseUrl: volt.baseUrl,
    table: table.name,
    parser: TEXT_PARSER,
  }));
  t.after(() => followers.forEach((follower) => follower.stop()));

  await Promise.all(FOLLOWED_TABLES.map(async ({ table, keyColumns }, index) => {
    const expectedRows = await selectAll(oracle, table, keyColumns);
    await followers[index].waitUntilRowsEqual(expectedRows, keyColumns, {
      timeoutMs: INITIAL_SYNC_TIMEOUT_MS,
      label: `initial sync of ${table.name}`,
    });
  }));

  const benchmark = await runProgramChecked(
    'pgbench',
    ['-c', String(BENCHMARK_CLIENTS), '-T', String(BENCHMARK_SECONDS), volt.databaseUrl],
    { timeoutMs: (BENCHMARK_SECONDS + 100) * 1000 },
  );
  const processed = /number of transactions actually processed: (\d+)/.exec(benchmark.stdout);
  assert.ok(processed, `pgbench printed no transaction count:\n${benchmark.stdout}`);
  assert.ok(Number(processed[1]) > 0, `pgbench processed no transactions:\n${benchmark.stdout}`);
  t.diagnostic(`pgbench processed ${processed[1]} transactions`);

  // pgbench has ended, so SELECT now returns the final state that every client must reach.
  for (const [index, { table, keyColumns }] of FOLLOWED_TABLES.entries()) {
    const expectedRows = await selectAll(oracle, table, keyColumns);
    await followers[index].waitUntilRowsEqual(expectedRows, keyColumns, {
      timeoutMs: CATCH_UP_TIMEOUT_MS,
      label: `${table.name} after pgbench`,
    });
    assert.equal(followers[index].shape.currentRows.length, expectedRows.length, `row count of ${table.name}`);
    assert.equal(
      followers[index].responseCount(409),
      0,
      `the client of ${table.name} had to refetch the shape\n${followers[index].describeHistory()}`,
    );
  }
});
