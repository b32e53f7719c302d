/**
 * The problems a configuration is refused with, for tests that check the
 * messages (each names its path and the fix).
 */
import { ConfigError } from '../../src/config/loader.js';
import { GraphConfigError, parseGraphConfig } from '../../src/graph/config.js';

/** The problems of the ConfigError `fn` throws; a test error when it throws none. */
export function configProblems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** The problems of a `graph:` section, [] when it is valid. */
export function graphConfigProblems(input: unknown): string[] {
  try {
    parseGraphConfig(input);
  } catch (error) {
    if (error instanceof GraphConfigError) return [...error.problems];
    throw error;
  }
  return [];
}
