import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from '../support/api.js';
import { freePort, processesMatching, runAgora, waitUntilUp, type AgoraProcess } from '../support/process.js';

// `agora start` as a user runs it: its own process, the embedded PostgreSQL, real signals.
describe('agora start (embedded mode, as a process)', () => {
  let dataDir: string;
  const running: AgoraProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'agora-cli-'));
  });
  afterAll(async () => {
    for (const p of running) p.child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  async function start(): Promise<{ proc: AgoraProcess; url: string }> {
    const port = await freePort();
    const proc = runAgora(['start', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir]);
    running.push(proc);
    const url = `http://127.0.0.1:${port}`;
    await waitUntilUp(`${url}/readyz`, proc);
    return { proc, url };
  }

  it('drains in-flight requests on SIGTERM, exits 0, stops PostgreSQL, and finds its data after a restart', async () => {
    const first = await start();
    const api = apiClient(() => first.url);
    const handles = Array.from({ length: 16 }, (_, i) => `drain_${i}`);
    // Signups hash passwords with argon2 (tens of ms each), so these are still in flight
    // when the signal arrives.
    const answeredAt: number[] = [];
    const inFlight = handles.map((handle) =>
      api('POST', '/v1/auth/signup', { body: { handle, email: `${handle}@example.org`, password: 'correct horse' } }).finally(() => answeredAt.push(Date.now())),
    );
    await new Promise((r) => setTimeout(r, 40));
    const signalledAt = Date.now();
    first.proc.child.kill('SIGTERM');

    const answers = await Promise.all(inFlight);
    expect(answers.map((a) => a.status)).toEqual(handles.map(() => 201));
    // The drain is what this proves: some requests were still being served after the signal.
    expect(answeredAt.filter((t) => t > signalledAt).length).toBeGreaterThan(0);
    expect(await first.proc.exited).toBe(0);
    expect(first.proc.output()).toContain('stopping: draining in-flight requests');
    expect(await processesMatching(join(dataDir, 'postgres'))).toEqual([]);

    const second = await start();
    const again = apiClient(() => second.url);
    for (const handle of handles) {
      const login = await again('POST', '/v1/auth/login', { body: { login: handle, password: 'correct horse' } });
      expect({ handle, status: login.status }).toEqual({ handle, status: 200 });
    }
    second.proc.child.kill('SIGINT');
    expect(await second.proc.exited).toBe(0);
    expect(await processesMatching(join(dataDir, 'postgres'))).toEqual([]);
  });

  it('fails with a clear error naming the port and the setting when the gateway port is taken', async () => {
    const blocker: Server = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    try {
      const proc = runAgora(['start', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir]);
      running.push(proc);
      expect(await proc.exited).toBe(2);
      expect(proc.output()).toContain(`port ${port} is already in use`);
      expect(proc.output()).toContain('AGORA_GATEWAY_PORT');
      expect(await processesMatching(join(dataDir, 'postgres'))).toEqual([]);
    } finally {
      blocker.close();
    }
  });
});

describe('agora, the command', () => {
  it('prints its usage for --help and exits 0', async () => {
    const proc = runAgora(['--help']);
    expect(await proc.exited).toBe(0);
    expect(proc.output()).toContain('agora start');
  });

  it('exits 2 on an unknown command', async () => {
    const proc = runAgora(['frobnicate']);
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toContain('unknown command');
  });

  it('names the bad setting and its variable when the configuration is invalid', async () => {
    const proc = runAgora(['start'], { AGORA_GATEWAY_PORT: 'eighty' });
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toContain('gateway.port');
    expect(proc.output()).toContain('AGORA_GATEWAY_PORT');
  });
});
