/**
 * The `admin:` section: the token that guards the admin API, the diagnostics
 * page's data and (optionally) /metrics, and how much history is kept.
 *
 *   admin:
 *     token: ${ADMIN_TOKEN}     # at least 24 characters, e.g. `openssl rand -hex 24`
 *     historySize: 50           # view changes kept per user
 *     metricsToken: ...         # optional: /metrics then needs `Authorization: Bearer <it>`
 */
import { z } from 'zod';

/** The token config/demo.yaml falls back to: public, so good on loopback only. */
export const DEMO_ADMIN_TOKEN = 'demo-admin-token-for-localhost-only';

const TOKEN_HINT = 'at least 24 characters without spaces; make one with `openssl rand -hex 24`';

const token = z
  .string({ message: `a string of ${TOKEN_HINT}` })
  .min(24, `too short: use ${TOKEN_HINT}`)
  .max(512, 'at most 512 characters')
  .regex(/^[\x21-\x7e]+$/, `printable ASCII without spaces (${TOKEN_HINT})`);

export const adminSchema = z.strictObject({
  token,
  historySize: z
    .number({ message: 'a whole number of entries, e.g. 50' })
    .int('a whole number of entries, e.g. 50')
    .min(1, 'at least 1 entry per user')
    .max(10_000, 'at most 10000 entries per user')
    .default(50),
  metricsToken: token.optional(),
});

export type AdminConfig = z.infer<typeof adminSchema>;

export class AdminConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid admin configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'AdminConfigError';
  }
}

function where(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string') out += out === '' ? part : `.${part}`;
  }
  return out === '' ? '(top level)' : out;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (typeof v !== 'object' || v === null || typeof key === 'symbol') return undefined;
    v = (v as Record<string | number, unknown>)[key];
  }
  return v;
}

/** Validate the object under `admin:`; throws AdminConfigError with `admin.<path>: <what to fix>` lines. */
export function parseAdminConfig(input: unknown, prefix = 'admin'): AdminConfig {
  const r = adminSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  throw new AdminConfigError(
    r.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return `${where(prefix, issue.path)}: unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')} (allowed: token, historySize, metricsToken)`;
      }
      if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) {
        const key = where(prefix, issue.path);
        return key.endsWith('.token') ? `${key}: missing; set ${TOKEN_HINT}` : `${key}: missing`;
      }
      return `${where(prefix, issue.path)}: ${issue.message}`;
    }),
  );
}
