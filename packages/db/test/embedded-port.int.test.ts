import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as processHelpers from '../src/embedded-process.js';
import { EmbeddedPostgres } from '../src/index.js';

// The race this covers (another process binds the port between our probe and postgres' bind)
// cannot be provoked reliably, so the first probe is made to return a port that is taken.
vi.mock(import('../src/embedded-process.js'), async (importOriginal) => {
  const actual = await importOriginal();
  return { ...actual, findFreePort: vi.fn(actual.findFreePort) };
});

describe('EmbeddedPostgres port selection', () => {
  const blocker = createServer((socket) => socket.destroy());
  let blockedPort = 0;
  let parent = '';

  beforeAll(async () => {
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    blockedPort = typeof address === 'object' && address !== null ? address.port : 0;
    parent = await mkdtemp(join(tmpdir(), 'agora-port-'));
  });

  afterAll(async () => {
    await new Promise((resolve) => blocker.close(resolve));
    await rm(parent, { recursive: true, force: true });
  });

  it('retries on another free port when the one it picked is taken', async () => {
    vi.mocked(processHelpers.findFreePort).mockResolvedValueOnce(blockedPort);
    const server = new EmbeddedPostgres({ dataDir: join(parent, 'pg'), settings: { fsync: 'off' } });
    try {
      const { url } = await server.start();
      const port = Number(new URL(url).port);
      expect(port).not.toBe(blockedPort);
      expect(processHelpers.findFreePort).toHaveBeenCalledTimes(2);
    } finally {
      await server.stop();
    }
  });
});
