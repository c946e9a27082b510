// Runs command-line programs (psql, pgbench) to completion with a deadline.

import { spawn } from 'node:child_process';

const OUTPUT_MAX_CHARS = 64 * 1024;
const KILL_GRACE_MS = 5_000;

/**
 * Runs `command` with `args` and resolves with `{ code, signal, stdout, stderr }` when it exits.
 *
 * Rejects when the program cannot be started or is still running after `timeoutMs`, in which
 * case it is sent SIGTERM, then SIGKILL after a grace period. Only the last 64 KiB of each
 * output stream is kept.
 */
export function runProgram(command, args, { timeoutMs, env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let killTimer;

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout = (stdout + chunk).slice(-OUTPUT_MAX_CHARS);
    });
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-OUTPUT_MAX_CHARS);
    });

    const timeoutTimer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);

    child.on('error', (error) => {
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      reject(new Error(`failed to start ${command}: ${error.message}`));
    });

    child.on('close', (code, signal) => {
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      if (timedOut) {
        reject(new Error(`${command} ${args.join(' ')} timed out after ${timeoutMs} ms\nstderr:\n${stderr}`));
        return;
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs a program like `runProgram` and rejects unless it exits with code 0. */
export async function runProgramChecked(command, args, options) {
  const result = await runProgram(command, args, options);
  if (result.code !== 0) {
    const status = result.signal === null ? `exit code ${result.code}` : `signal ${result.signal}`;
    throw new Error(
      `${command} ${args.join(' ')} failed with ${status}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
  return result;
}
