// Values the global setup hands to every test file through vitest's provide/inject.
declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server URL; tests make their own database on it with createTestDatabase. */
    databaseUrl: string;
    /** A Redis server URL; tests share it and keep apart by a unique key prefix each. */
    redisUrl: string;
    /** A NATS server URL with JetStream on; tests share it and keep apart by a unique stream prefix each. */
    natsUrl: string;
  }
}

export {};
