#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { ConfigError, loadConfigFile } from './config/loader.js';
import { startGateway } from './app.js';
import { limitHeapGrowth } from './util/heap-growth.js';
import { createLogger } from './util/logger.js';

const USAGE = `usage: presence-gateway [--config FILE]

  --config FILE   YAML configuration (also PRESENCE_GATEWAY_CONFIG); without one the demo runs
                  (config/demo.yaml: SIP on 127.0.0.1:5060, sample users)
  --help          this text
`;

function packageRoot(): string {
  // src/main.ts under tsx, dist/src/main.js when built
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(resolve(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

function parseArgs(argv: readonly string[]): { config?: string } {
  const out: { config?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined) throw new Error('--config needs a file path');
      out.config = v;
    } else if (a.startsWith('--config=')) {
      out.config = a.slice('--config='.length);
    } else {
      throw new Error(`unknown argument "${a}"\n${USAGE}`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  // before the heap grows: keep it near its live size (src/util/heap-growth.ts)
  limitHeapGrowth();
  let args: { config?: string };
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const file = args.config ?? process.env['PRESENCE_GATEWAY_CONFIG'] ?? resolve(packageRoot(), 'config/demo.yaml');
  let config;
  try {
    config = loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger({ level: config.log.level });
  logger.info({ config: file, users: config.users.length }, 'starting');
  const gateway = await startGateway(config, logger);
  logger.info('ready');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    gateway
      .stop()
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`presence-gateway failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
