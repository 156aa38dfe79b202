import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { access, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedPostgres } from '@agora/db';
import { expect, it } from 'vitest';
import { reapOrphanedServers, TEST_PG_PREFIX } from './reap.js';

const exists = (path: string) => access(path).then(() => true, () => false);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('stops and removes the test PostgreSQL of a run that died without its teardown, and leaves live runs alone', async () => {
  // given a server whose runner is gone (a process that has exited), as a SIGKILLed run leaves it
  const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
  const orphanDir = await mkdtemp(join(tmpdir(), TEST_PG_PREFIX));
  await writeFile(join(orphanDir, 'runner.pid'), String(dead));
  const orphan = new EmbeddedPostgres({ dataDir: join(orphanDir, 'data') });
  await orphan.start();
  // and a directory of a run that is alive (this one)
  const liveDir = await mkdtemp(join(tmpdir(), TEST_PG_PREFIX));
  await writeFile(join(liveDir, 'runner.pid'), String(process.pid));
  try {
    const postmaster = Number(readFileSync(join(orphanDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(alive(postmaster)).toBe(true);

    // when the next run starts
    expect(await reapOrphanedServers()).toBeGreaterThanOrEqual(1);

    // then the orphan is stopped and gone, and the live run's directory is untouched
    expect(alive(postmaster)).toBe(false);
    expect(await exists(orphanDir)).toBe(false);
    expect(await exists(liveDir)).toBe(true);
  } finally {
    await orphan.stop().catch(() => undefined);
    rmSync(liveDir, { recursive: true, force: true });
    rmSync(orphanDir, { recursive: true, force: true });
  }
});
