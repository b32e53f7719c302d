/**
 * A Lua script run on Redis by its SHA1 (EVALSHA), falling back to EVAL when
 * the server does not know it yet (first use, or after a restart emptied the
 * script cache). Scripts run atomically: https://redis.io/docs/latest/develop/interact/programmability/eval-intro/
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface LuaScript {
  run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

export function luaScript(source: string): LuaScript {
  const sha = createHash('sha1').update(source).digest('hex');
  return {
    async run(client, keys, args) {
      try {
        return await client.evalsha(sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return client.eval(source, keys.length, ...keys, ...args);
        throw err;
      }
    },
  };
}
