import { Writable } from 'node:stream';
import t from 'tap';
import { WatchItem, type UpstreamTarget } from '../../src/simple/upstream-watcher.js';
import { createLogger } from '../../src/util/logger.js';

const target: UpstreamTarget = {
  trunk: 'pbx1',
  personId: 'alice',
  uri: 'sip:1001@pbx.example.com',
  event: 'dialog',
  accept: ['application/dialog-info+xml'],
  expires: 3600,
  fromUri: 'sip:gw@gw.example.com',
  destination: async () => ({ protocol: 'udp', address: '198.51.100.5', port: 5060 }),
};

t.test('an upstream subscription changes state only as its table allows; a refused change is logged, not made', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.length > 0) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  const item = new WatchItem(target);
  t.equal(item.state, 'initial');
  t.notOk(item.up);
  t.notOk(item.enter('refreshing', logger), 'not up yet: a SUBSCRIBE out is notify-wait');
  t.equal(item.state, 'initial', 'refused: unchanged');
  t.ok(item.enter('notify-wait', logger));
  t.notOk(item.enter('active', logger), 'up while the SUBSCRIBE is out is refreshing');
  t.ok(item.enter('refreshing', logger));
  t.ok(item.up);
  t.ok(item.enter('active', logger));
  t.ok(item.enter('terminated', logger));
  t.notOk(item.enter('active', logger), 'removed is final');
  t.equal(item.state, 'terminated');
  t.notOk(item.up);
  await new Promise((r) => setImmediate(r));
  t.same(
    lines.map((l) => [l['level'], l['msg'], l['from'], l['to'], l['trunk'], l['user']]),
    [
      [50, 'upstream subscription state change refused', 'initial', 'refreshing', 'pbx1', 'alice'],
      [50, 'upstream subscription state change refused', 'notify-wait', 'active', 'pbx1', 'alice'],
      [50, 'upstream subscription state change refused', 'terminated', 'active', 'pbx1', 'alice'],
    ],
  );
});
