import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.js';
import { caught, DEFAULT_TEST_CONFIG, testConfigSpec } from './helpers.js';

async function configError(sources: Parameters<typeof loadConfig>[1]): Promise<ConfigError> {
  const err = await caught(() => loadConfig(testConfigSpec, sources));
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).code).toBe('invalid_config');
  return err as ConfigError;
}

describe('loadConfig: values', () => {
  it('fills every default, nested sections included, when no source is given', () => {
    expect(loadConfig(testConfigSpec)).toEqual(DEFAULT_TEST_CONFIG);
    expect(loadConfig(testConfigSpec, { env: {}, overrides: {} })).toEqual(DEFAULT_TEST_CONFIG);
  });

  it('converts environment strings to the integers of the schema', () => {
    const config = loadConfig(testConfigSpec, { env: { AGORA_GATEWAY_PORT: '9090', AGORA_SHUTDOWN_TIMEOUT_MS: '5000' } });
    expect(config.gateway.port).toBe(9090);
    expect(config.shutdown.timeoutMs).toBe(5000);
    expect(config.gateway.host).toBe('localhost');
  });

  it('ignores environment variables it does not map and empty ones', () => {
    const config = loadConfig(testConfigSpec, { env: { AGORA_GATEWAY_PORT: '', PATH: '/usr/bin', AGORA_UNMAPPED: 'x' } });
    expect(config).toEqual(DEFAULT_TEST_CONFIG);
  });

  it('lets overrides win over the environment, and converts their strings too', () => {
    const config = loadConfig(testConfigSpec, {
      env: { AGORA_GATEWAY_PORT: '2222', AGORA_GATEWAY_HOST: 'env-host' },
      overrides: { 'gateway.port': '3333', 'shutdown.timeoutMs': undefined },
    });
    expect(config.gateway).toEqual({ host: 'env-host', port: 3333 });
    expect(config.shutdown.timeoutMs).toBe(20_000);
  });
});

describe('loadConfig: errors', () => {
  it('names the dotted key and the environment variable of a value that is not an integer', async () => {
    const err = await configError({ env: { AGORA_GATEWAY_PORT: 'eighty' } });
    expect(err.issues).toEqual([expect.objectContaining({ key: 'gateway.port', source: 'env AGORA_GATEWAY_PORT' })]);
  });

  it.each(['80.5', '1e3', '0x50', '8080abc'])('refuses %s for an integer instead of reading another number out of it', async (raw) => {
    const err = await configError({ env: { AGORA_GATEWAY_PORT: raw } });
    expect(err.issues.map((i) => [i.key, i.source])).toEqual([['gateway.port', 'env AGORA_GATEWAY_PORT']]);
  });

  it('names the environment variable of a value out of range', async () => {
    const err = await configError({ env: { AGORA_SHUTDOWN_TIMEOUT_MS: '10' } });
    expect(err.issues).toEqual([expect.objectContaining({ key: 'shutdown.timeoutMs', source: 'env AGORA_SHUTDOWN_TIMEOUT_MS' })]);
  });

  it('names the command line as the source of a bad override', async () => {
    const err = await configError({ env: { AGORA_GATEWAY_PORT: '2222' }, overrides: { 'gateway.port': 70_000 } });
    expect(err.issues).toEqual([expect.objectContaining({ key: 'gateway.port', source: 'command line' })]);
  });

  it('reports every bad setting at once, one issue per key', async () => {
    const err = await configError({ env: { AGORA_GATEWAY_PORT: 'x', DATABASE_URL: 'mysql://db', AGORA_NAME: '' }, overrides: { name: '' } });
    expect(err.issues.map((i) => [i.key, i.source]).sort()).toEqual([
      ['database.url', 'env DATABASE_URL'],
      ['gateway.port', 'env AGORA_GATEWAY_PORT'],
      ['name', 'command line'],
    ]);
  });

  it('reports an override of a setting that does not exist', async () => {
    const err = await configError({ overrides: { 'gateway.prot': 1 } });
    expect(err.issues).toEqual([expect.objectContaining({ key: 'gateway.prot', source: 'command line' })]);
  });
});

describe('loadConfig: required settings', () => {
  const spec = {
    schema: Type.Object({ auth: Type.Object({ secret: Type.String({ minLength: 8 }) }, { additionalProperties: false, default: {} }) }, { additionalProperties: false }),
    env: { AGORA_AUTH_SECRET: 'auth.secret' },
  };

  it('tells which environment variable to set for a required setting nobody set', async () => {
    const err = await caught(() => loadConfig(spec, { env: {} }));
    expect((err as ConfigError).code).toBe('invalid_config');
    expect((err as ConfigError).issues).toEqual([expect.objectContaining({ key: 'auth.secret', source: 'default; set AGORA_AUTH_SECRET' })]);
  });

  it('takes it from the environment', () => {
    expect(loadConfig(spec, { env: { AGORA_AUTH_SECRET: 'correct horse' } })).toEqual({ auth: { secret: 'correct horse' } });
  });
});

describe('config: lists from the environment', () => {
  it('reads comma-separated text into a list of the item type', () => {
    const spec = {
      schema: Type.Object({ ports: Type.Array(Type.Integer(), { default: [] }), names: Type.Array(Type.String(), { default: [] }) }, { additionalProperties: false }),
      env: { PORTS: 'ports', NAMES: 'names' },
    };
    expect(loadConfig(spec, { env: { PORTS: '80, 443', NAMES: 'ada,grace,' } })).toEqual({ ports: [80, 443], names: ['ada', 'grace'] });
    expect(() => loadConfig(spec, { env: { PORTS: '80,http' } })).toThrowError(expect.objectContaining({ code: 'invalid_config' }));
  });
});
