import t from 'tap';
import { Metrics } from '../../src/http/metrics.js';

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

t.test('observation points become Prometheus series on the metrics own registry', async (t) => {
  const m = new Metrics({ processMetrics: false });
  for (let i = 0; i < 3; i++) m.notifySent('presence');
  m.notifySent('dialog');
  m.notifyFailed('presence', 481);
  m.notifyFailed('presence', 'timeout');
  m.publish('presence', 'created');
  m.publish('presence', 412);
  m.graphRequest(200);
  m.graphRequest(200);
  m.graphRequest(429);
  m.webhookDelivery('accepted');
  m.teamsToSip(0.3);
  m.sipToTeams(1.5);
  m.sipToTeams(Number.NaN);
  m.collectSubscriptions(() => ({ presence: 10, dialog: { active: 4, pending: 1 } }));
  m.collectTrunks(() => [
    { name: 'pbx1', profile: 'asterisk', directions: ['watch'], reachable: true, authenticated: true, subscriptions: { up: 7, down: 2 }, publications: { up: 0, down: 0 } },
    { name: 'cucm', profile: 'cisco', directions: ['publish'], reachable: false, authenticated: undefined, subscriptions: { up: 0, down: 0 }, publications: { up: 0, down: 1 } },
  ]);
  const text = await m.text();
  t.equal(value(text, 'notify_sent_total{event="presence"}'), 3);
  t.equal(value(text, 'notify_sent_total{event="dialog"}'), 1);
  t.equal(value(text, 'notify_failed_total{event="presence",status="481"}'), 1);
  t.equal(value(text, 'notify_failed_total{event="presence",status="timeout"}'), 1);
  t.equal(value(text, 'publish_total{event="presence",result="created"}'), 1);
  t.equal(value(text, 'publish_total{event="presence",result="412"}'), 1);
  t.equal(value(text, 'graph_requests_total{status="200"}'), 2);
  t.equal(value(text, 'graph_requests_total{status="429"}'), 1);
  t.equal(value(text, 'graph_throttled_total'), 1, 'a 429 counts as throttled');
  t.equal(value(text, 'webhook_deliveries_total{result="accepted"}'), 1);
  t.equal(value(text, 'subscriptions{event="presence",state="active"}'), 10);
  t.equal(value(text, 'subscriptions{event="dialog",state="pending"}'), 1);
  t.equal(value(text, 'trunk_up{trunk="pbx1"}'), 1);
  t.equal(value(text, 'trunk_up{trunk="cucm"}'), 0);
  t.equal(value(text, 'upstream_subscriptions{trunk="pbx1",state="down"}'), 2);
  t.equal(value(text, 'teams_to_sip_seconds_count'), 1);
  t.equal(value(text, 'teams_to_sip_seconds_bucket{le="0.5"}'), 1);
  t.equal(value(text, 'teams_to_sip_seconds_bucket{le="0.25"}'), 0);
  t.equal(value(text, 'sip_to_teams_seconds_count'), 1, 'NaN is not observed');
  t.match(text, /# TYPE notify_sent_total counter/);
  t.notMatch(text, /process_cpu/, 'no process metrics when turned off');
  t.match(m.contentType, /text\/plain/);

  // counts keep growing between scrapes; collections do not double them
  m.notifySent('presence');
  const again = await m.text();
  t.equal(value(again, 'notify_sent_total{event="presence"}'), 4);
  t.equal(value(again, 'graph_throttled_total'), 1);
  t.same(m.snapshot(), { notifySent: 5, notifyFailed: 2, webhookDeliveries: 1, graphThrottled: 1 });
  t.equal(m.lastWebhookDelivery()?.result, 'accepted');
});

t.test('two Metrics do not share a registry, and the prefix applies everywhere', async (t) => {
  const a = new Metrics({ prefix: 'pgw_' });
  const b = new Metrics({ processMetrics: false });
  a.notifySent('presence');
  const ta = await a.text();
  const tb = await b.text();
  t.equal(value(ta, 'pgw_notify_sent_total{event="presence"}'), 1);
  t.match(ta, /pgw_process_cpu_user_seconds_total/, 'process metrics, prefixed');
  t.notMatch(tb, /notify_sent_total\{/, 'the other registry saw nothing');
});

t.test('dropped Graph notifications count by reason', async (t) => {
  const m = new Metrics({ processMetrics: false });
  m.notificationDropped('clientState');
  m.notificationDropped('clientState');
  m.notificationDropped('signature');
  const text = await m.text();
  t.equal(value(text, 'graph_notifications_dropped_total{reason="clientState"}'), 2);
  t.equal(value(text, 'graph_notifications_dropped_total{reason="signature"}'), 1);
  t.match(text, /# TYPE graph_notifications_dropped_total counter/);
});
