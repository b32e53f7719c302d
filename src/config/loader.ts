import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type GatewayConfig } from './schema.js';

/** A config problem, naming the file, the path inside it, and what would be right. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid configuration in ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type PathPart = string | number;

export function formatPath(path: readonly PathPart[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out.length === 0 ? part : `.${part}`;
  }
  return out.length === 0 ? '(top level)' : out;
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replace ${NAME} and ${NAME:-default} in every string of the tree. A
 * reference to an unset variable with no default is an error at its path.
 */
export function substituteEnv(
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  problems: string[],
  path: PathPart[] = [],
): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined) return v;
      if (def !== undefined) return def;
      problems.push(`${formatPath(path)}: environment variable ${name} is not set (set it, or write \${${name}:-default})`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, problems, [...path, k]);
    return out;
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = issue.path.filter((p): p is PathPart => typeof p !== 'symbol');
  let got: unknown = input;
  for (const p of path) {
    if (got !== null && typeof got === 'object') got = (got as Record<PathPart, unknown>)[p];
    else got = undefined;
  }
  // a secret that fails validation is still a secret: say what is wrong, not what it is
  const secret = /token|password|secret/i.test(String(path[path.length - 1] ?? ''));
  const shown = got === undefined || secret ? '' : ` (got ${JSON.stringify(got)?.slice(0, 80)})`;
  if (issue.code === 'unrecognized_keys') {
    return `${formatPath(path)}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling; see config/example.yaml)`;
  }
  if (issue.code === 'custom') return `${formatPath(path)}: ${issue.message}${shown}`;
  return `${formatPath(path)}: expected ${issue.message.replace(/^Invalid input: expected /, '')}${shown}`;
}

/** Validate an already parsed (and env-substituted) object. */
export function validateConfig(input: unknown, file = '(inline)'): GatewayConfig {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(file, result.error.issues.map((i) => describeIssue(i, input)));
  return result.data;
}

/** Parse YAML text into a validated config; ${ENV} references resolved from env. */
export function parseConfig(
  text: string,
  file = '(inline)',
  env: Readonly<Record<string, string | undefined>> = process.env,
): GatewayConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}, column ${pos.col}` : 'YAML'}: ${e.message.split('\n')[0]} (fix the YAML syntax)`;
      }),
    );
  }
  const problems: string[] = [];
  const substituted = substituteEnv(doc.toJS(), env, problems);
  if (problems.length > 0) throw new ConfigError(file, problems);
  return validateConfig(substituted, file);
}

export function loadConfigFile(path: string, env: Readonly<Record<string, string | undefined>> = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new ConfigError(path, [`cannot read the file (${code}); give an existing path with --config`]);
  }
  return parseConfig(text, path, env);
}
