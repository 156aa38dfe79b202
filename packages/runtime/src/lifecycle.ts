import type { Logger } from '@agora/observability';

/** Anything the host starts and stops: a pool, an HTTP server, a consumer. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  /** Finishes in-flight work, then releases everything. Called once, after a successful start. */
  stop(): Promise<void>;
}

export interface HostOptions {
  readonly logger: Logger;
  /** The whole stop should end within this; each component gets what is left of it (at least 500 ms). */
  readonly stopTimeoutMs?: number;
}

/**
 * Runs components in order and stops them in reverse: the gateway stops taking requests
 * before the services behind it stop, and they finish before the database goes away.
 * @example
 * const host = new Host({ logger }).add(database).add(social).add(gateway);
 * await host.start();
 * stopOnSignals(host, { logger });
 */
export class Host {
  readonly #components: Component[] = [];
  readonly #started: Component[] = [];
  #stopping: Promise<boolean> | undefined;
  #starting: Promise<void> | undefined;

  constructor(private readonly options: HostOptions) {}

  add(component: Component): this {
    this.#components.push(component);
    return this;
  }

  /**
   * Starts every component in order; if one fails, stops those already started and rethrows.
   * A stop requested while starting lets the component being started finish, starts no
   * other, and rejects with {@link StoppedWhileStartingError}.
   */
  start(): Promise<void> {
    this.#starting ??= this.#startAll();
    return this.#starting;
  }

  async #startAll(): Promise<void> {
    for (const component of this.#components) {
      if (this.#stopping !== undefined) throw new StoppedWhileStartingError();
      const started = performance.now();
      try {
        await component.start();
      } catch (err) {
        this.options.logger.error({ err, component: component.name }, 'start failed; stopping what was started');
        // A stop already under way is waiting for this start to end; it stops what started.
        if (this.#stopping === undefined) {
          this.#starting = undefined;
          await this.stop();
        }
        throw err;
      }
      this.#started.push(component);
      this.options.logger.debug({ component: component.name, ms: Math.round(performance.now() - started) }, 'started');
    }
    // A stop asked for while the last component was starting: the host is not running.
    if (this.#stopping !== undefined) throw new StoppedWhileStartingError();
  }

  /**
   * Stops the started components in reverse order, each within what is left of the
   * deadline. Resolves to true when every component stopped cleanly. Safe to call twice.
   */
  stop(): Promise<boolean> {
    this.#stopping ??= this.#stopAll();
    return this.#stopping;
  }

  async #stopAll(): Promise<boolean> {
    await this.#starting?.catch(() => undefined);
    const deadline = Date.now() + (this.options.stopTimeoutMs ?? 15_000);
    let clean = true;
    for (const component of [...this.#started].reverse()) {
      // What is left of the deadline, but never less than a moment: a component that overran
      // must not leave the ones after it (the database last) without a chance to stop.
      const left = Math.max(deadline - Date.now(), 500);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          component.stop(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not stop within ${left} ms`)), left);
          }),
        ]);
        this.options.logger.debug({ component: component.name }, 'stopped');
      } catch (err) {
        clean = false;
        this.options.logger.error({ err, component: component.name }, 'stop failed');
      } finally {
        clearTimeout(timer);
      }
    }
    this.#started.length = 0;
    return clean;
  }
}

/** The host was asked to stop before it had started every component. */
export class StoppedWhileStartingError extends Error {
  readonly code = 'stopped_while_starting';
  constructor() {
    super('stopped before every component had started');
    this.name = 'StoppedWhileStartingError';
  }
}

export interface SignalOptions {
  readonly logger: Logger;
  readonly signals?: readonly NodeJS.Signals[];
  /** Replaced in tests; `process.exit` otherwise. */
  readonly exit?: (code: number) => void;
}

/**
 * On the first SIGINT or SIGTERM, stops the host and exits 0 (1 if something failed to
 * stop). A second signal while stopping is logged and otherwise ignored, so an impatient
 * Ctrl-C cannot leave the embedded database running.
 */
export function stopOnSignals(host: Host, options: SignalOptions): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      options.logger.warn({ signal }, 'already stopping; waiting for in-flight work to finish');
      return;
    }
    stopping = true;
    options.logger.info({ signal }, 'stopping: draining in-flight requests');
    void host.stop().then((clean) => {
      options.logger.info({ clean }, 'stopped');
      exit(clean ? 0 : 1);
    });
  };
  for (const s of signals) process.on(s, onSignal);
  return () => signals.forEach((s) => process.off(s, onSignal));
}

/**
 * A component built only when it is started: for parts that need something known only at
 * run time, such as the address of a database started by an earlier component.
 * @example
 * host.add(database).add(deferred('social', () => createSocialService({ databaseUrl: database.url(), ... })));
 */
export function deferred(name: string, build: () => Promise<Component>): Component {
  let built: Component | undefined;
  return {
    name,
    async start() {
      const component = await build();
      await component.start();
      built = component;
    },
    async stop() {
      await built?.stop();
      built = undefined;
    },
  };
}
