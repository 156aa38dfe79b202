import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.js';
import { caught, DEFAULT_TEST_CONFIG, testConfigSpec } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agora-runtime-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `content` (an object as JSON, or raw text) to a file of its own and returns the path. */
async function configFile(content: unknown): Promise<string> {
  const file = join(dir, `${randomUUID()}.json`);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

async function configError(sources: Parameters<typeof loadConfig>[1]): Promise<ConfigError> {
  const err = await caught(() => loadConfig(testConfigSpec, sources));
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).code).toBe('invalid_config');
  return err as ConfigError;
}

describe('loadConfig with a file', () => {
  it('takes the file over the defaults and keeps defaults for what it leaves out', async () => {
    const file = await configFile({ gateway: { port: 1111 } });
    expect(loadConfig(testConfigSpec, { file })).toEqual({ ...DEFAULT_TEST_CONFIG, gateway: { host: 'localhost', port: 1111 } });
  });

  it('applies defaults < file < environment < overrides', async () => {
    // given the same settings in every source, each also setting one of its own
    const file = await configFile({ name: 'from-file', gateway: { host: 'file-host', port: 1111 }, shutdown: { timeoutMs: 5000 } });
    const env = { AGORA_GATEWAY_PORT: '2222', AGORA_SHUTDOWN_TIMEOUT_MS: '6000' };
    const overrides = { 'gateway.port': 3333 };
    // when they are loaded together
    const config = loadConfig(testConfigSpec, { file, env, overrides });
    // then each setting comes from the strongest source that sets it
    expect(config).toEqual({
      name: 'from-file',
      gateway: { host: 'file-host', port: 3333 },
      database: {},
      shutdown: { timeoutMs: 6000 },
    });
  });

  it('names the file as the source of a bad value in it', async () => {
    const file = await configFile({ gateway: { port: 'eighty' } });
    const err = await configError({ file });
    expect(err.issues).toEqual([expect.objectContaining({ key: 'gateway.port', source: `file ${file}` })]);
  });

  it('does not blame the file for a bad value it had that the environment replaced', async () => {
    const file = await configFile({ gateway: { port: 1111 } });
    const err = await configError({ file, env: { AGORA_GATEWAY_PORT: 'x' } });
    expect(err.issues).toEqual([expect.objectContaining({ key: 'gateway.port', source: 'env AGORA_GATEWAY_PORT' })]);
  });

  it('reports an unknown key in a section as an issue for that key', async () => {
    const file = await configFile({ gateway: { prot: 8080 } });
    const err = await configError({ file });
    expect(err.issues).toEqual([expect.objectContaining({ key: 'gateway.prot', source: `file ${file}` })]);
  });

  it('reports an unknown top-level section, naming the file', async () => {
    const file = await configFile({ mystery: { depth: 1 } });
    const err = await configError({ file });
    expect(err.issues).toEqual([expect.objectContaining({ key: 'mystery', source: `file ${file}` })]);
  });

  it('refuses a file that cannot be read', async () => {
    const file = join(dir, `missing-${randomUUID()}.json`);
    const err = await configError({ file });
    expect(err.issues).toEqual([expect.objectContaining({ key: '(file)', source: file })]);
  });

  it('refuses a file that is not valid JSON', async () => {
    const file = await configFile('{ "gateway": { "port": 80, } ');
    const err = await configError({ file });
    expect(err.issues).toEqual([expect.objectContaining({ key: '(file)', source: file })]);
  });

  it.each([
    ['a number', '42'],
    ['null', 'null'],
    ['a string', '"gateway"'],
    ['an array', '[{ "gateway": { "port": 1 } }]'],
  ])('refuses a file whose JSON is %s rather than an object', async (_case, text) => {
    const file = await configFile(text);
    const err = await configError({ file });
    expect(err.issues).toEqual([expect.objectContaining({ key: '(file)', source: file })]);
  });
});
