import { parseArgs } from 'node:util';
import { createLogger } from '@agora/observability';
import { ConfigError, PortInUseError, stopOnSignals, StoppedWhileStartingError } from '@agora/runtime';
import { readAgoraConfig, type AgoraConfig } from './config.js';
import { dlq } from './dlq.js';
import { buildEmbeddedSystem } from './system.js';

const HELP = `agora: the Agora social platform backend

Usage:
  agora start [options]    run the whole system in embedded mode (one process, embedded PostgreSQL)
  agora dlq <command>      list, show, replay or purge dead letters (agora dlq --help)
  agora help               this text

Options of start:
  --port <n>               gateway port (default 8080; AGORA_GATEWAY_PORT)
  --host <name>            gateway host (default localhost; AGORA_GATEWAY_HOST)
  --data-dir <path>        where the embedded database and dev keys live (default .agora; AGORA_DATA_DIR)
  --config <file>          a JSON configuration file (AGORA_CONFIG)
  --log-level <level>      fatal, error, warn, info, debug, trace or silent (AGORA_LOG_LEVEL)

Environment: DATABASE_URL uses an external PostgreSQL instead of the embedded one.
Every setting is listed in README.md under Configuration.
`;

/** Runs one command; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case 'dlq':
      return dlq(rest, process.env);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`agora: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

function readStartConfig(args: readonly string[]): AgoraConfig | number {
  try {
    const { values } = parseArgs({
      args: [...args],
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'data-dir': { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help === true) {
      process.stdout.write(HELP);
      return 0;
    }
    return readAgoraConfig({
      env: process.env,
      file: values.config ?? process.env.AGORA_CONFIG,
      overrides: { 'gateway.port': values.port, 'gateway.host': values.host, dataDir: values['data-dir'], logLevel: values['log-level'] },
    });
  } catch (err) {
    if (err instanceof ConfigError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`agora start: ${(err as Error).message}\n\nSee agora help.\n`);
      return 2;
    }
    throw err;
  }
}

async function start(args: readonly string[]): Promise<number> {
  const config = readStartConfig(args);
  if (typeof config === 'number') return config;
  const logger = createLogger({ name: 'agora', level: config.logLevel });
  const system = await buildEmbeddedSystem(config, logger);
  // Signals are handled from the very start: a Ctrl-C while PostgreSQL boots still stops it.
  const stopped = new Promise<number>((resolve) => stopOnSignals(system.host, { logger, exit: resolve }));
  try {
    await system.host.start();
  } catch (err) {
    if (err instanceof StoppedWhileStartingError) return stopped;
    if (err instanceof PortInUseError) {
      logger.fatal(`port ${err.port} is already in use by another process; choose another with --port or AGORA_GATEWAY_PORT (setting gateway.port)`);
      return 2;
    }
    logger.fatal({ err }, 'agora could not start');
    return 1;
  }
  logger.info({ url: system.gatewayUrl(), docs: `${system.gatewayUrl()}/docs` }, 'agora is up (embedded mode)');
  return stopped;
}
