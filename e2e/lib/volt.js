// Starts a Volt server with its embedded PostgreSQL for one test file, and stops both.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';

import { voltBinary } from './paths.js';

const STARTUP_TIMEOUT_MS = 60_000;
const SIGTERM_TIMEOUT_MS = 30_000;
const SIGKILL_TIMEOUT_MS = 10_000;
const LEFTOVER_POSTGRES_TIMEOUT_MS = 10_000;
const PID_POLL_INTERVAL_MS = 50;
const LOG_TAIL_LINES = 60;

const DATABASE_READY_PATTERN = /embedded PostgreSQL ready at (postgresql:\/\/\S+)/;
const LISTENING_PATTERN = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
// tracing-subscriber may color its output even when stderr is a pipe.
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE_PATTERN = /\x1b\[[0-9;]*m/g;

/**
 * Starts Volt on a free loopback port with a fresh storage directory under /tmp, and
 * resolves once Volt has logged both its embedded PostgreSQL URL and its listening address.
 *
 * `extraArgs` are appended to Volt's command line. DATABASE_URL is removed from Volt's
 * environment so that Volt starts its own PostgreSQL. If the start fails or takes more than
 * 60 s, Volt is stopped and the error contains the tail of its log.
 *
 * Set VOLT_E2E_LOG=1 to copy Volt's output to this process's stderr.
 */
export async function startVolt({ extraArgs = [] } = {}) {
  if (!fs.existsSync(voltBinary)) {
    throw new Error(`Volt binary not found at ${voltBinary}: build it with \`cargo build\` or set VOLT_BIN`);
  }

  // The tests run as root and Volt runs PostgreSQL as the postgres user, which must be able
  // to reach the storage directory. Volt rejects a directory that other users cannot search,
  // and mkdtemp creates it with mode 0700.
  const storageDir = fs.mkdtempSync('/tmp/volt-e2e-');
  fs.chmodSync(storageDir, 0o755);
  const args = [
    '--storage-dir', storageDir,
    '--port', '0',
    '--listen-address', '127.0.0.1',
    ...extraArgs,
  ];
  const env = { ...process.env, NO_COLOR: '1' };
  delete env.DATABASE_URL;

  const child = spawn(voltBinary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const volt = new VoltServer(child, storageDir, args);

  try {
    await volt.waitUntilReady(STARTUP_TIMEOUT_MS);
  } catch (error) {
    const problems = await volt.shutdown();
    if (problems.length > 0) {
      error.message += `\nCleanup after the failed start: ${problems.join('\n')}`;
    }
    throw error;
  }
  return volt;
}

/** A running Volt process, its URLs and the tail of its log. */
class VoltServer {
  /** Base URL of Volt's HTTP API, such as http://127.0.0.1:41234. */
  baseUrl = null;
  /** URL of Volt's embedded PostgreSQL (trust authentication, user and database postgres). */
  databaseUrl = null;

  #child;
  #storageDir;
  #args;
  #logTail = [];
  #lineListeners = new Set();
  #exitStatus = null;
  #exited;
  #stopPromise = null;
  #terminateOnProcessExit;

  constructor(child, storageDir, args) {
    this.#child = child;
    this.#storageDir = storageDir;
    this.#args = args;

    this.#exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.#exitStatus = { code, signal };
        resolve();
      });
      // 'exit' is not emitted when the binary cannot be started at all.
      child.on('error', (error) => {
        if (this.#exitStatus === null) {
          this.#exitStatus = { error };
          resolve();
        }
      });
    });

    for (const [streamName, stream] of [['stderr', child.stderr], ['stdout', child.stdout]]) {
      readline.createInterface({ input: stream }).on('line', (line) => this.#recordLine(streamName, line));
    }

    // If the test process exits without calling stop(), SIGTERM still lets Volt stop its PostgreSQL.
    this.#terminateOnProcessExit = () => {
      if (this.#exitStatus === null) {
        this.#child.kill('SIGTERM');
      }
    };
    process.on('exit', this.#terminateOnProcessExit);
  }

  /** Process id of Volt. */
  get pid() {
    return this.#child.pid;
  }

  /** Last lines of Volt's stderr and stdout, one string. */
  logTail() {
    return this.#logTail.join('\n');
  }

  #recordLine(streamName, rawLine) {
    const line = rawLine.replace(ANSI_ESCAPE_PATTERN, '');
    this.#logTail.push(streamName === 'stderr' ? line : `[stdout] ${line}`);
    if (this.#logTail.length > LOG_TAIL_LINES) {
      this.#logTail.shift();
    }
    if (process.env.VOLT_E2E_LOG === '1') {
      process.stderr.write(`[volt ${this.#child.pid}] ${line}\n`);
    }
    for (const listener of this.#lineListeners) {
      listener(line);
    }
  }

  /** Resolves when both startup lines have been logged, and rejects on exit or after `timeoutMs`. */
  waitUntilReady(timeoutMs) {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (error) => {
        if (settled) {
          return;
        }
        settled = true;
        clearTimeout(timer);
        this.#lineListeners.delete(onLine);
        if (error) {
          reject(error);
        } else {
          resolve();
        }
      };
      const failure = (reason) => new Error(
        `Volt (${voltBinary} ${this.#args.join(' ')}) ${reason}\n` +
        `database URL seen: ${this.databaseUrl ?? 'none'}, HTTP URL seen: ${this.baseUrl ?? 'none'}\n` +
        `Volt log tail:\n${this.logTail()}`,
      );
      const onLine = (line) => {
        const databaseMatch = DATABASE_READY_PATTERN.exec(line);
        if (databaseMatch) {
          this.databaseUrl = databaseMatch[1];
        }
        const listeningMatch = LISTENING_PATTERN.exec(line);
        if (listeningMatch) {
          this.baseUrl = listeningMatch[1];
        }
        if (this.databaseUrl !== null && this.baseUrl !== null) {
          finish();
        }
      };

      const timer = setTimeout(
        () => finish(failure(`did not log both startup lines within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#lineListeners.add(onLine);
      this.#exited.then(() => finish(failure(`exited during startup (${describeExit(this.#exitStatus)})`)));
    });
  }

  /**
   * Stops Volt with SIGTERM (SIGKILL if it has not exited after 30 s), stops a PostgreSQL
   * that Volt left running, and removes the storage directory.
   *
   * Rejects after cleaning up if Volt had exited before this call, did not exit on SIGTERM,
   * or left its PostgreSQL running, because each of these breaks Volt's shutdown contract.
   * Calling it again returns the same promise.
   */
  stop() {
    this.#stopPromise ??= this.#stopAndReport();
    return this.#stopPromise;
  }

  async #stopAndReport() {
    const problems = [];
    if (this.#exitStatus !== null) {
      problems.push(`Volt exited before stop() was called (${describeExit(this.#exitStatus)})`);
    }
    problems.push(...(await this.shutdown()));
    if (problems.length > 0) {
      throw new Error(`${problems.join('\n')}\nVolt log tail:\n${this.logTail()}`);
    }
  }

  /**
   * Ends Volt and any PostgreSQL it left behind, removes the storage directory, and returns
   * the list of shutdown problems seen, without throwing.
   */
  async shutdown() {
    const problems = [];
    process.off('exit', this.#terminateOnProcessExit);

    if (this.#exitStatus === null) {
      this.#child.kill('SIGTERM');
      if (!(await this.#waitForExit(SIGTERM_TIMEOUT_MS))) {
        problems.push(`Volt did not exit within ${SIGTERM_TIMEOUT_MS} ms of SIGTERM, so it was sent SIGKILL`);
        this.#child.kill('SIGKILL');
        if (!(await this.#waitForExit(SIGKILL_TIMEOUT_MS))) {
          problems.push(`Volt (pid ${this.#child.pid}) did not exit within ${SIGKILL_TIMEOUT_MS} ms of SIGKILL`);
        }
      }
    }

    const leftoverProblem = await stopLeftoverPostgres(this.#storageDir);
    if (leftoverProblem !== null) {
      problems.push(leftoverProblem);
    }

    fs.rmSync(this.#storageDir, { recursive: true, force: true });
    return problems;
  }

  async #waitForExit(timeoutMs) {
    let timer;
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const exited = await Promise.race([this.#exited.then(() => true), timedOut]);
    clearTimeout(timer);
    return exited;
  }
}

function describeExit(exitStatus) {
  if (exitStatus.error) {
    return `could not start: ${exitStatus.error.message}`;
  }
  if (exitStatus.signal !== null) {
    return `killed by ${exitStatus.signal}`;
  }
  return `exit code ${exitStatus.code}`;
}

/**
 * Stops a PostgreSQL server still running from a data directory inside `storageDir`, and
 * returns a description of the problem, or null when none was running.
 *
 * The process id comes from postmaster.pid. It is signalled only if its working directory
 * (the postmaster changes into its data directory) is inside `storageDir`, so that a stale
 * pid file never leads to signalling an unrelated process.
 */
async function stopLeftoverPostgres(storageDir) {
  for (const pidFile of findPostmasterPidFiles(path.join(storageDir, 'postgres'))) {
    const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0], 10);
    if (!Number.isInteger(pid) || !isPostgresInDirectory(pid, storageDir)) {
      continue;
    }

    // SIGQUIT is PostgreSQL's immediate shutdown.
    process.kill(pid, 'SIGQUIT');
    if (!(await waitForPidToEnd(pid, LEFTOVER_POSTGRES_TIMEOUT_MS))) {
      process.kill(pid, 'SIGKILL');
    }
    return `Volt left its PostgreSQL (pid ${pid}, ${path.dirname(pidFile)}) running after it exited`;
  }
  return null;
}

/** Returns the postmaster.pid files in `postgresDir` and its direct subdirectories. */
function findPostmasterPidFiles(postgresDir) {
  if (!fs.existsSync(postgresDir)) {
    return [];
  }
  const candidates = [path.join(postgresDir, 'postmaster.pid')];
  for (const entry of fs.readdirSync(postgresDir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      candidates.push(path.join(postgresDir, entry.name, 'postmaster.pid'));
    }
  }
  return candidates.filter((candidate) => fs.existsSync(candidate));
}

function isPostgresInDirectory(pid, directory) {
  try {
    const workingDirectory = fs.readlinkSync(`/proc/${pid}/cwd`);
    return workingDirectory === directory || workingDirectory.startsWith(directory + path.sep);
  } catch {
    // The process no longer exists.
    return false;
  }
}

/** Polls until process `pid` is gone, because no event reports the end of a non-child process. */
async function waitForPidToEnd(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isProcessRunning(pid)) {
      return true;
    }
    await delay(PID_POLL_INTERVAL_MS);
  }
  return false;
}

/** Returns whether `pid` exists and is not a zombie, which an init that does not reap can leave behind. */
function isProcessRunning(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state letter follows the command name, which is in parentheses and may contain spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z';
  } catch {
    return false;
  }
}
