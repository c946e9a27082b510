// Loads the Pagila schema (no rows) with psql into PostgreSQL before version 18, without pgvector.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { sharedDir } from './paths.js';
import { runProgramChecked } from './programs.js';

const PSQL_TIMEOUT_MS = 60_000;

/**
 * Edits that make the Pagila dump run on PostgreSQL 15 to 17 without the pgvector extension. Each
 * pattern must match exactly `count` times, so that a changed script fails loudly.
 *
 * - `uuidv7()` exists from PostgreSQL 18 on, so the uuid columns default to gen_random_uuid().
 * - Virtual generated columns exist from PostgreSQL 18 on, so film.length_hours is STORED.
 * - pgvector is not installed, so film_embedding.embedding becomes `real[]`, and the
 *   extension, its comment and the HNSW index are removed.
 */
const PAGILA_EDITS = [
  { pattern: /\buuidv7\(\)/g, replacement: 'gen_random_uuid()', count: 58 },
  { pattern: /(GENERATED ALWAYS AS \(round\(length \/ 60\.0, 2\)\)) VIRTUAL$/gm, replacement: '$1 STORED', count: 1 },
  { pattern: /^CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;$/gm, replacement: '', count: 1 },
  { pattern: /^COMMENT ON EXTENSION vector IS .*;$/gm, replacement: '', count: 1 },
  { pattern: /\bpublic\.vector\(20\)/g, replacement: 'real[]', count: 1 },
  { pattern: /^CREATE INDEX film_embedding_embedding_hnsw_idx .*;$/gm, replacement: '', count: 1 },
];

/** Loads testdata/datasets/pagila/pagila-schema.sql, with PAGILA_EDITS applied, into `databaseUrl`. */
export async function loadPagilaSchema(databaseUrl) {
  const scriptPath = path.join(sharedDir, 'datasets', 'pagila', 'pagila-schema.sql');
  let script = fs.readFileSync(scriptPath, 'utf8');
  for (const { pattern, replacement, count } of PAGILA_EDITS) {
    const matches = script.match(pattern)?.length ?? 0;
    if (matches !== count) {
      throw new Error(`expected ${scriptPath} to match ${pattern} ${count} times, but it matched ${matches} times`);
    }
    script = script.replace(pattern, replacement);
  }

  const scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'volt-e2e-sql-'));
  try {
    const editedPath = path.join(scratchDir, 'pagila-schema.sql');
    fs.writeFileSync(editedPath, script);
    await runProgramChecked(
      'psql',
      ['-v', 'ON_ERROR_STOP=1', '-q', '-d', databaseUrl, '-f', editedPath],
      { timeoutMs: PSQL_TIMEOUT_MS },
    );
  } finally {
    fs.rmSync(scratchDir, { recursive: true, force: true });
  }
}
