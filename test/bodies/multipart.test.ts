import t from 'tap';
import { BodyError, buildMultipartRelated, parseMultipartRelated, rootPart, type MimePart } from '../../src/bodies/index.js';

const PARTS: MimePart[] = [
  { contentType: 'application/rlmi+xml;charset="UTF-8"', contentId: 'root@h', headers: [['Content-Transfer-Encoding', 'binary']], body: Buffer.from('<list/>') },
  { contentType: 'application/pidf+xml', contentId: 'p1@h', headers: [['Content-Transfer-Encoding', 'binary']], body: Buffer.from('<presence>\r\nline two\r\n</presence>') },
  { contentType: 'application/octet-stream', headers: [], body: Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a]) },
];

function status(fn: () => unknown): number | string {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return e instanceof BodyError ? e.status : `threw ${String(e)}`;
  }
}

t.test('build: exact wire layout with CRLFs, type/start/boundary parameters', async (t) => {
  const built = buildMultipartRelated(PARTS.slice(0, 2), { boundary: 'BND', type: 'application/rlmi+xml', start: 'root@h' });
  t.equal(built.contentType, 'multipart/related;type="application/rlmi+xml";start="<root@h>";boundary=BND');
  t.equal(
    built.body.toString('latin1'),
    '--BND\r\n' +
      'Content-Transfer-Encoding: binary\r\nContent-ID: <root@h>\r\nContent-Type: application/rlmi+xml;charset="UTF-8"\r\n\r\n' +
      '<list/>\r\n' +
      '--BND\r\n' +
      'Content-Transfer-Encoding: binary\r\nContent-ID: <p1@h>\r\nContent-Type: application/pidf+xml\r\n\r\n' +
      '<presence>\r\nline two\r\n</presence>\r\n' +
      '--BND--\r\n',
  );
});

t.test('round trip, binary bodies intact, root found by start', async (t) => {
  const built = buildMultipartRelated(PARTS);
  const doc = parseMultipartRelated(built.body, built.contentType);
  t.equal(doc.type, 'application/rlmi+xml');
  t.equal(doc.start, 'root@h');
  t.equal(doc.parts.length, 3);
  for (let i = 0; i < PARTS.length; i++) {
    t.same(doc.parts[i]!.body, PARTS[i]!.body, `part ${i} body`);
    t.equal(doc.parts[i]!.contentType, PARTS[i]!.contentType);
    t.equal(doc.parts[i]!.contentId, PARTS[i]!.contentId);
  }
  t.same(doc.parts[0]!.headers, [['content-transfer-encoding', 'binary']]);
  t.equal(rootPart(doc), doc.parts[0]);
});

t.test('the boundary never occurs inside a part', async (t) => {
  const sneaky: MimePart[] = [{ contentType: 'text/plain', headers: [], body: Buffer.from('a\r\n--TRY\r\nb') }];
  const built = buildMultipartRelated(sneaky, { boundary: 'TRY' });
  t.not(built.boundary, 'TRY', 'a boundary found in a part is replaced');
  t.equal(built.body.indexOf(`--${built.boundary}`, 0), 0);
  const doc = parseMultipartRelated(built.body, built.contentType);
  t.same(doc.parts[0]!.body.toString(), 'a\r\n--TRY\r\nb');
  for (let i = 0; i < 20; i++) {
    const b = buildMultipartRelated(PARTS);
    t.ok(/^[A-Za-z0-9]{24}$/.test(b.boundary), 'random boundary of 24 safe characters');
  }
});

t.test('parse: preamble, epilogue, folded headers, padding, part without headers', async (t) => {
  const body = Buffer.from(
    'This is a preamble.\r\n--xyz  \r\nContent-Type: text/plain;\r\n charset=us-ascii\r\nContent-ID:<a@b>\r\n\r\nhello\r\n--xyz\r\n\r\nno headers\r\n--xyz--\r\nepilogue',
  );
  const doc = parseMultipartRelated(body, 'Multipart/Related; boundary=xyz');
  t.equal(doc.parts.length, 2);
  t.equal(doc.parts[0]!.contentType, 'text/plain; charset=us-ascii');
  t.equal(doc.parts[0]!.contentId, 'a@b');
  t.equal(doc.parts[0]!.body.toString(), 'hello');
  t.equal(doc.parts[1]!.contentType, 'text/plain', 'default type');
  t.equal(doc.parts[1]!.body.toString(), 'no headers');
  t.equal(rootPart(doc), doc.parts[0], 'no start: the first part');
});

t.test('hostile and malformed input: BodyError, never another throw', async (t) => {
  const ct = 'multipart/related;boundary=b';
  t.equal(status(() => parseMultipartRelated(Buffer.from('--b\r\n\r\nx\r\n--b--'), 'application/pidf+xml')), 415, 'not multipart/related');
  t.equal(status(() => parseMultipartRelated(Buffer.from('--b\r\n\r\nx\r\n--b--'), 'multipart/mixed;boundary=b')), 415, 'multipart/mixed');
  t.equal(status(() => parseMultipartRelated(Buffer.from('x'), 'multipart/related')), 400, 'no boundary');
  t.equal(status(() => parseMultipartRelated(Buffer.from('x'), 'multipart/related;boundary=""')), 400, 'empty boundary');
  t.equal(status(() => parseMultipartRelated(Buffer.from('x'), `multipart/related;boundary=${'a'.repeat(71)}`)), 400, 'boundary too long');
  t.equal(status(() => parseMultipartRelated(Buffer.from('x'), 'multipart/related;;')), 400, 'malformed Content-Type');
  t.equal(status(() => parseMultipartRelated(Buffer.from('no delimiter at all'), ct)), 400, 'no delimiter');
  t.equal(status(() => parseMultipartRelated(Buffer.from('--b\r\n\r\nbody never closed'), ct)), 400, 'no close delimiter');
  t.equal(status(() => parseMultipartRelated(Buffer.from('--bX\r\n\r\nx\r\n--b--'), ct)), 400, 'delimiter line with junk');
  t.equal(status(() => parseMultipartRelated(Buffer.from('--b--'), ct)), 400, 'no parts');
  t.equal(status(() => parseMultipartRelated(Buffer.from('--b\r\nContent-Type text/plain\r\n\r\nx\r\n--b--'), ct)), 400, 'header without colon');
  t.equal(status(() => parseMultipartRelated(Buffer.from('--b\r\n continued\r\n\r\nx\r\n--b--'), ct)), 400, 'continuation first');
  t.equal(status(() => parseMultipartRelated(Buffer.from('--b\r\nContent-Type: a/b\r\nx\r\n--b--'), ct)), 400, 'headers never end');
  t.equal(
    status(() => parseMultipartRelated(Buffer.from('--b\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\nx\r\n--b--'), ct)),
    400,
    'two Content-Types',
  );
  t.equal(status(() => parseMultipartRelated(Buffer.alloc(70_000, 0x41), ct)), 413, 'too large');
  const many = '--b\r\n\r\nx\r\n'.repeat(30) + '--b--';
  t.equal(status(() => parseMultipartRelated(Buffer.from(many), ct, { maxParts: 10 })), 413, 'too many parts');
  t.equal(status(() => buildMultipartRelated([])), 400, 'build needs a part');
  t.equal(
    status(() => buildMultipartRelated([{ contentType: 'a/b\r\nX-Injected: 1', headers: [], body: Buffer.alloc(0) }])),
    400,
    'no header injection',
  );

  // A fuzz pass: random slices and byte flips of a valid body never escape as another error.
  const good = buildMultipartRelated(PARTS);
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let others = 0;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(good.body);
    for (let k = 0; k < 1 + rnd(4); k++) b[rnd(b.length)] = rnd(256);
    const cut = b.subarray(0, rnd(b.length + 1));
    const s = status(() => parseMultipartRelated(cut, good.contentType));
    if (typeof s === 'string' && s !== 'no error') others++;
  }
  t.equal(others, 0, 'only BodyError from mutated bodies');
});
