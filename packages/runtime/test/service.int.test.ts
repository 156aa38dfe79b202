import { createMetrics } from '@agora/observability';
import { createMemoryRegistry, type Registry } from '@agora/discovery';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createHttpService, registeredService, type Component, type HttpService } from '../src/index.js';
import { call, caught, quietLogger, uniqueName } from './helpers.js';

/** A dependency that writes `start:<name>` and `stop:<name>` into the journal. */
function dependency(journal: string[], name: string, start: () => Promise<void> = async () => undefined): Component {
  return {
    name,
    async start() {
      journal.push(`start:${name}`);
      await start();
    },
    async stop() {
      journal.push(`stop:${name}`);
    },
  };
}

async function newHttp(): Promise<HttpService> {
  const http = await createHttpService({ name: uniqueName('svc'), logger: quietLogger(), metrics: createMetrics({ collectDefaults: false }) });
  onTestFinished(async () => {
    if (http.app.server.listening) await http.component.stop();
  });
  return http;
}

describe('registeredService', () => {
  it('registers only once listening and deregisters before it stops listening', async () => {
    // given a service with a dependency, and a watcher that probes it on every registry change
    const journal: string[] = [];
    const registry = createMemoryRegistry();
    const http = await newHttp();
    const name = uniqueName('social');
    const instanceId = uniqueName('social-1');
    const unwatch = registry.watch((change) => journal.push(`${change.type}:${change.instance.id}:listening=${http.app.server.listening}`));
    onTestFinished(unwatch);
    const service = registeredService({ name, instanceId, registry, http, dependencies: [dependency(journal, 'db')] });
    // when it starts
    await service.start();
    // then it was registered under its url once its dependency was up and it listened
    expect(await registry.instances(name)).toEqual([{ id: instanceId, service: name, url: http.url() }]);
    expect((await call(`${http.url()}/healthz`)).status).toBe(200);
    // and when it stops, it leaves the registry while still listening, then releases its dependency
    await service.stop();
    expect(journal).toEqual(['start:db', `up:${instanceId}:listening=true`, `down:${instanceId}:listening=true`, 'stop:db']);
    expect(http.app.server.listening).toBe(false);
    expect(await registry.instances(name)).toEqual([]);
  });

  it('stops the dependencies already started when one fails, and neither listens nor registers', async () => {
    // given three dependencies, the second of which fails to start
    const journal: string[] = [];
    const registry = createMemoryRegistry();
    const http = await newHttp();
    const failure = new Error('migration failed');
    const service = registeredService({
      name: uniqueName('social'),
      instanceId: uniqueName('social-1'),
      registry,
      http,
      dependencies: [dependency(journal, 'db'), dependency(journal, 'cache', () => Promise.reject(failure)), dependency(journal, 'bus')],
    });
    // when it starts
    const err = await caught(() => service.start());
    // then the failure comes back, the started dependency is stopped, and nothing else happened
    expect(err).toBe(failure);
    expect(journal).toEqual(['start:db', 'start:cache', 'stop:db']);
    expect(http.app.server.listening).toBe(false);
    expect(await registry.services()).toEqual([]);
  });

  it('stops listening and releases its dependencies when it cannot register', async () => {
    const journal: string[] = [];
    const failure = new Error('registry unreachable');
    const memory = createMemoryRegistry();
    const registry: Registry = { ...memory, register: () => Promise.reject(failure) };
    const http = await newHttp();
    const service = registeredService({ name: uniqueName('social'), instanceId: uniqueName('social-1'), registry, http, dependencies: [dependency(journal, 'db')] });
    const err = await caught(() => service.start());
    expect(err).toBe(failure);
    expect(journal).toEqual(['start:db', 'stop:db']);
    expect(http.app.server.listening).toBe(false);
  });
});
