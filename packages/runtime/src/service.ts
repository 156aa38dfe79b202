import type { Registry } from '@agora/discovery';
import type { HttpService } from './http/server.js';
import type { Component } from './lifecycle.js';

export interface RegisteredServiceOptions {
  /** Service name, as the gateway and other services look it up. */
  readonly name: string;
  /** Unique per running copy. */
  readonly instanceId: string;
  readonly registry: Registry;
  readonly http: HttpService;
  /** Started before the server listens, stopped after it has drained: pools, migrations. */
  readonly dependencies?: readonly Component[];
}

/**
 * A service as the host sees it: its dependencies come up, then it listens, then it is
 * registered, so nobody is sent to it before it can answer. Stopping runs the other way:
 * it leaves the registry first, drains its requests, then releases its dependencies.
 * @example
 * host.add(registeredService({ name: 'social', instanceId: 'social-1', registry, http, dependencies: [database.component] }));
 */
export function registeredService(options: RegisteredServiceOptions): Component {
  const dependencies = options.dependencies ?? [];
  const started: Component[] = [];
  const stopStarted = async () => {
    let failure: unknown;
    for (const component of started.reverse()) {
      try {
        await component.stop();
      } catch (err) {
        failure ??= err;
      }
    }
    started.length = 0;
    if (failure !== undefined) throw failure;
  };
  return {
    name: options.name,
    async start() {
      try {
        for (const component of [...dependencies, options.http.component]) {
          await component.start();
          started.push(component);
        }
        await options.registry.register({ id: options.instanceId, service: options.name, url: options.http.url() });
      } catch (err) {
        await stopStarted().catch(() => undefined);
        throw err;
      }
    },
    async stop() {
      try {
        await options.registry.deregister(options.instanceId);
      } finally {
        // Even if the registry is unreachable, the server drains and the pools close.
        await stopStarted();
      }
    },
  };
}
