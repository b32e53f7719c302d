import t from 'tap';
import { GraphError, type Client } from '@microsoft/microsoft-graph-client';
import { readPresences } from '../../src/graph/presence-batch.js';

/** getPresencesByUserId as a fake: `answer` decides per call. */
function fake(answer: (ids: string[]) => unknown): { client: Client; calls: string[][] } {
  const calls: string[][] = [];
  const client = {
    api: () => ({
      post: async (body: { ids: string[] }) => {
        calls.push(body.ids);
        return answer(body.ids);
      },
    }),
  } as unknown as Client;
  return { client, calls };
}

const presence = (id: string, availability = 'Available') => ({ id, availability, activity: availability });

t.test('unknown ids, whichever way Graph answers them (undocumented)', async (t) => {
  const ids = ['a', 'b', 'ghost', 'c'];

  await t.test('left out of value: the others are read, nothing fails', async (t) => {
    const { client } = fake((batch) => ({ value: batch.filter((i) => i !== 'ghost').map((i) => presence(i)) }));
    const got: string[] = [];
    const r = await readPresences(client, ids, (v) => got.push(...v.map((x) => (x as { id: string }).id)));
    t.same(got, ['a', 'b', 'c']);
    t.same(r.failedIds, []);
  });

  await t.test('returned as PresenceUnknown: taken as it is', async (t) => {
    const { client } = fake((batch) => ({ value: batch.map((i) => presence(i, i === 'ghost' ? 'PresenceUnknown' : 'Busy')) }));
    const got: unknown[] = [];
    await readPresences(client, ids, (v) => got.push(...v));
    t.same(got.find((x) => (x as { id: string }).id === 'ghost'), presence('ghost', 'PresenceUnknown'));
  });

  await t.test('a 404 for the whole call: halves until the unknown id stands alone', async (t) => {
    const { client, calls } = fake((batch) => {
      if (batch.includes('ghost')) throw new GraphError(404, "Resource 'ghost' does not exist");
      return { value: batch.map((i) => presence(i)) };
    });
    const got: string[] = [];
    const r = await readPresences(client, ids, (v) => got.push(...v.map((x) => (x as { id: string }).id)), 1);
    t.same(got.sort(), ['a', 'b', 'c'], 'everyone known was read');
    t.same(r.unknownIds, ['ghost']);
    t.same(r.failedIds, [], 'not a failure to read again every poll');
    t.same(calls, [['a', 'b', 'ghost', 'c'], ['a', 'b'], ['ghost', 'c'], ['ghost'], ['c']]);
  });

  await t.test('a 429 is a failure of the batch (read again later), not split', async (t) => {
    const { client, calls } = fake(() => {
      throw new GraphError(429, 'Too many requests');
    });
    const r = await readPresences(client, ids, () => undefined);
    t.same(r.failedIds, ids);
    t.equal(calls.length, 1);
  });
});
