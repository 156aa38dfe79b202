import { pino, type Logger, type DestinationStream } from 'pino';
import { currentContext } from './context.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** The component writing: `gateway`, `identity`, `agora`... */
  readonly name: string;
  readonly level?: string;
  /** Where lines go; standard output by default. Tests pass a stream to read them back. */
  readonly destination?: DestinationStream;
}

/**
 * A JSON logger whose every line carries the current request and trace ids, so that one
 * `requestId` finds a request's lines in the gateway and in every service it reached.
 * @example
 * const log = createLogger({ name: 'social', level: 'info' });
 * log.info({ postId }, 'post created');
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const ctx = currentContext();
        return ctx === undefined ? {} : { requestId: ctx.requestId, traceId: ctx.traceId };
      },
      redact: { paths: ['req.headers.authorization', 'password', '*.password'], censor: '[redacted]' },
    },
    options.destination,
  );
}
