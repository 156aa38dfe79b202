/** One running copy of a service, reachable at `url`. */
export interface Instance {
  readonly id: string;
  readonly service: string;
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  readonly meta?: Readonly<Record<string, string>>;
}

export type RegistryChange = { readonly type: 'up' | 'down'; readonly instance: Instance };

/**
 * Where the instances of each service are. Adapters: in-memory (embedded mode) here; Redis
 * and etcd with TTL heartbeats in distributed mode. Callers never learn which one they use.
 */
export interface Registry {
  register(instance: Instance): Promise<void>;
  deregister(instanceId: string): Promise<void>;
  /** The instances of `service` that are up, in registration order. */
  instances(service: string): Promise<readonly Instance[]>;
  /** Every service name with at least one instance. */
  services(): Promise<readonly string[]>;
  /** Calls `listener` on every join and leave; returns the unsubscribe function. */
  watch(listener: (change: RegistryChange) => void): () => void;
}

/**
 * The registry of embedded mode: every service runs in this process, so the process is the
 * source of truth and nothing expires.
 * @example
 * const registry = createMemoryRegistry();
 * await registry.register({ id: 'social-1', service: 'social', url: 'http://127.0.0.1:40123' });
 * (await registry.instances('social')).length; // 1
 */
export function createMemoryRegistry(): Registry {
  const byId = new Map<string, Instance>();
  const listeners = new Set<(change: RegistryChange) => void>();
  const emit = (change: RegistryChange) => listeners.forEach((l) => l(change));
  return {
    async register(instance) {
      byId.set(instance.id, instance);
      emit({ type: 'up', instance });
    },
    async deregister(instanceId) {
      const instance = byId.get(instanceId);
      if (instance === undefined) return;
      byId.delete(instanceId);
      emit({ type: 'down', instance });
    },
    async instances(service) {
      return [...byId.values()].filter((i) => i.service === service);
    },
    async services() {
      return [...new Set([...byId.values()].map((i) => i.service))];
    },
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
