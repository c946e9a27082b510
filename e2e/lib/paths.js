// Locations of the repository, the shared data sets and the Volt binary.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the Volt repository: this file is at <repo>/e2e/lib/paths.js. */
export const repoRoot = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * Folder with the data sets (laid out as `datasets/<name>/…`): VOLT_SHARED_DIR, or the copies
 * kept in the repository under testdata/.
 */
export const sharedDir = process.env.VOLT_SHARED_DIR ?? path.join(repoRoot, 'testdata');

/** Volt binary under test: VOLT_BIN, or the debug build of this repository. */
export const voltBinary = process.env.VOLT_BIN ?? path.join(repoRoot, 'target', 'debug', 'volt');
