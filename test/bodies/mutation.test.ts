import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { parseDialogInfo } from '../../src/bodies/dialog-info.js';
import { BodyError } from '../../src/bodies/errors.js';
import { parsePidf } from '../../src/bodies/pidf.js';

const dir = new URL('../../sip-fixtures/bodies/', import.meta.url);
const bodies = readdirSync(dir)
  .filter((n) => !n.startsWith('refused-'))
  .sort()
  .map((n) => readFileSync(new URL(n, dir)));

// Small deterministic PRNG (mulberry32) so failures reproduce.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

// markup characters, NUL, and bytes that are never valid UTF-8 on their own
const SPICE = Buffer.concat([Buffer.from('<>&;"\'/=:![]? \u0000'), Buffer.from([0xff, 0x80, 0xc3])]);

function mutate(src: Buffer, rand: () => number): Buffer {
  const out = Buffer.from(src);
  const edits = 1 + Math.floor(rand() * 4);
  let buf = out;
  for (let i = 0; i < edits; i++) {
    const pos = Math.floor(rand() * buf.length);
    const kind = rand();
    if (kind < 0.4) buf[pos] = SPICE[Math.floor(rand() * SPICE.length)]!;
    else if (kind < 0.7) buf = Buffer.concat([buf.subarray(0, pos), buf.subarray(Math.min(buf.length, pos + 1 + Math.floor(rand() * 20)))]);
    else buf = Buffer.concat([buf.subarray(0, pos), buf.subarray(pos, Math.min(buf.length, pos + 30)), buf.subarray(pos)]);
  }
  return buf;
}

t.test('mutated bodies either parse or throw BodyError, never anything else', async (t) => {
  const rand = rng(20240502);
  let parsed = 0;
  let refused = 0;
  const strays: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const body = mutate(bodies[i % bodies.length]!, rand);
    for (const parse of [parsePidf, parseDialogInfo]) {
      try {
        parse(body);
        parsed++;
      } catch (err) {
        if (err instanceof BodyError && [400, 413, 415].includes(err.status)) refused++;
        else strays.push(`${String(err)} for ${body.toString('latin1').slice(0, 200)}`);
      }
    }
  }
  t.same(strays, [], 'no other exception escapes');
  t.ok(parsed > 0 && refused > 0, `both outcomes exercised (parsed ${parsed}, refused ${refused})`);
});
