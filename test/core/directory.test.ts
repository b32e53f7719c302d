import t from 'tap';
import { Directory } from '../../src/core/directory.js';

const dir = new Directory(
  [
    { id: 'anna', displayName: 'Anna', extension: '1001', sipAors: ['sip:anna@example.com'] },
    { id: 'ben', displayName: 'Ben', sipAors: ['sip:b.okafor@other.org'] },
  ],
  { domains: ['example.com'] },
);

t.test('exact AoR match on any host', async (t) => {
  t.equal(dir.findBySip('b.okafor', 'OTHER.org')?.id, 'ben');
  t.equal(dir.findBySip('anna', 'example.com')?.id, 'anna');
});

t.test('extension, id or AoR user on a local host or IP literal', async (t) => {
  t.equal(dir.findBySip('1001', '127.0.0.1')?.id, 'anna');
  t.equal(dir.findBySip('1001', '[::1]')?.id, 'anna');
  t.equal(dir.findBySip('ben', 'example.com')?.id, 'ben');
  t.equal(dir.findBySip('1001', 'elsewhere.net'), undefined, 'foreign domains do not match by extension');
  t.equal(dir.findBySip('9999', 'example.com'), undefined);
  t.equal(dir.findBySip(undefined, 'example.com'), undefined);
});

t.test('ambiguous names are refused at construction', async (t) => {
  t.throws(
    () =>
      new Directory(
        [
          { id: 'a', displayName: 'A', extension: '10', sipAors: [] },
          { id: 'b', displayName: 'B', extension: '10', sipAors: [] },
        ],
        { domains: [] },
      ),
    /"10" names both "a" and "b"/,
  );
  t.throws(() => new Directory([{ id: 'a', displayName: 'A', sipAors: [] }, { id: 'a', displayName: 'A', sipAors: [] }], { domains: [] }), /duplicate/);
});
