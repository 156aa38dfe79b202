import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A test run that is killed outright (SIGKILL, a CI timeout) never reaches its teardown, and
// its embedded PostgreSQL keeps running in its own process group. Each run therefore records
// its own pid beside the server it starts, and the next run stops the servers of runs that
// are gone.

export const TEST_PG_PREFIX = 'agora-test-pg-';
const RUNNER_FILE = 'runner.pid';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Marks `dir` as belonging to this test run. */
export async function claimTestDir(dir: string): Promise<void> {
  await writeFile(join(dir, RUNNER_FILE), String(process.pid));
}

/** Stops and removes the embedded servers of earlier runs that died without their teardown. */
export async function reapOrphanedServers(): Promise<number> {
  let reaped = 0;
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(TEST_PG_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const runner = Number(await readFile(join(dir, RUNNER_FILE), 'utf8').catch(() => ''));
    // No runner file: a run from before this mechanism, or one still starting; leave it.
    if (!Number.isInteger(runner) || runner <= 0 || alive(runner)) continue;
    const postmaster = Number((await readFile(join(dir, 'data', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (Number.isInteger(postmaster) && postmaster > 0 && alive(postmaster)) {
      process.kill(postmaster, 'SIGINT'); // fast shutdown
      for (let i = 0; i < 50 && alive(postmaster); i++) await new Promise((r) => setTimeout(r, 100));
    }
    await rm(dir, { recursive: true, force: true });
    reaped++;
  }
  return reaped;
}
