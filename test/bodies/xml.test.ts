import t from 'tap';
import { NS_XML } from '../../src/bodies/namespaces.js';
import { childElement, decodeEntities, escapeXml, parseXml, type XmlElement } from '../../src/bodies/xml.js';
import { statusOf } from './status-of.js';

t.test('resolves namespaces whatever the prefix', async (t) => {
  const root = parseXml(
    '<a:top xmlns:a="urn:one" xmlns="urn:default">' +
      '<plain/>' +
      '<a:pref/>' +
      '<b:inner xmlns:b="urn:two"><leaf/><b:deep xmlns="urn:three"><leaf/></b:deep></b:inner>' +
      '<nons xmlns=""/>' +
      '<u:unbound/>' +
      '</a:top>',
  );
  t.same([root.ns, root.name, root.prefix], ['urn:one', 'top', 'a']);
  const [plain, pref, inner, nons, unbound] = root.children as [XmlElement, XmlElement, XmlElement, XmlElement, XmlElement];
  t.same([plain.ns, plain.name], ['urn:default', 'plain']);
  t.same([pref.ns, pref.name], ['urn:one', 'pref']);
  t.same([inner.ns, inner.name], ['urn:two', 'inner']);
  t.equal(inner.children[0]!.ns, 'urn:default', 'default namespace inherited into a prefixed parent');
  t.equal(inner.children[1]!.ns, 'urn:two');
  t.equal(inner.children[1]!.children[0]!.ns, 'urn:three', 'redeclared default applies to descendants');
  t.equal(nons.ns, '', 'xmlns="" undeclares the default');
  t.same([unbound.ns, unbound.name, unbound.prefix], ['', 'unbound', 'u'], 'unbound prefix gives no namespace');
  t.equal(childElement(root, 'urn:two', 'inner'), inner);
  t.equal(childElement(root, 'urn:one', 'inner'), undefined);
});

t.test('attributes are decoded, xmlns declarations are not attributes, xml prefix is bound', async (t) => {
  const root = parseXml('<r xmlns="urn:r" xmlns:p="urn:p" id="a&amp;b" p:x="&#x41;&#66;" xml:lang="en"/>');
  t.same([...root.attrs.entries()], [
    ['id', 'a&b'],
    ['p:x', 'AB'],
    ['xml:lang', 'en'],
  ]);
  const withXmlPrefix = parseXml('<xml:thing/>');
  t.equal(withXmlPrefix.ns, NS_XML);
});

t.test('text: entities decoded once, CDATA kept literally, comments skipped', async (t) => {
  const root = parseXml('<n>a &lt;b&gt; &amp;amp; <!-- hidden --><![CDATA[&lt;raw>]]> &#233;&#x1F600; &unknown;</n>');
  t.equal(root.text, 'a <b> &amp; &lt;raw> é😀 &unknown;');
});

t.test('decodeEntities leaves invalid character references alone', async (t) => {
  t.equal(decodeEntities('x&#0;y&#xD800;z'), 'x&#0;y&#xD800;z');
  t.equal(decodeEntities('no refs'), 'no refs');
  t.equal(decodeEntities('&quot;&apos;'), `"'`);
});

t.test('escapeXml', async (t) => {
  const plain = 'nothing to do here';
  t.equal(escapeXml(plain), plain);
  t.equal(escapeXml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
  t.equal(escapeXml('bell\u0007 ok\ttab\nline\r'), 'bell ok\ttab\nline&#13;', 'drops characters XML cannot carry');
  t.equal(escapeXml('lone \ud800 surrogate, pair 😀'), 'lone  surrogate, pair 😀');
  // round trip through the parser
  const text = `Tom & "Jerry" <on-the-phone> it's\r\nfine 😀`;
  t.equal(parseXml(`<n a="${escapeXml(text)}">${escapeXml(text)}</n>`).text, text);
  t.equal(parseXml(`<n a="${escapeXml(text)}"/>`).attrs.get('a'), text);
});

t.test('accepts BOM, leading whitespace, UTF-8 declarations, Buffers', async (t) => {
  t.equal(parseXml('\ufeff<a/>').name, 'a');
  t.equal(parseXml(Buffer.from('\ufeff  <?xml version="1.0" encoding="utf-8"?>\n<a>é</a>')).text, 'é');
  t.equal(parseXml('<?xml version="1.0" encoding=\'US-ASCII\'?><a/>').name, 'a');
});

t.test('refuses DOCTYPE and ENTITY before parsing', async (t) => {
  t.equal(statusOf(() => parseXml('<?xml version="1.0"?><!DOCTYPE a><a/>')), 400, 'plain doctype');
  t.equal(statusOf(() => parseXml('<!doctype a [<!ENTITY x "y">]><a>&x;</a>')), 400, 'lower-case doctype');
  t.equal(statusOf(() => parseXml('<a><!ENTITY x SYSTEM "file:///etc/passwd"></a>')), 400, 'stray entity');
});

t.test('refuses oversize bodies with 413', async (t) => {
  const big = '<a>' + 'x'.repeat(70000) + '</a>';
  t.equal(statusOf(() => parseXml(big)), 413, 'string over default limit');
  t.equal(statusOf(() => parseXml(Buffer.from(big))), 413, 'buffer over default limit');
  t.equal(statusOf(() => parseXml('<a>xxxxxxxx</a>', { maxBytes: 10 })), 413, 'custom limit');
  // 30 two-byte characters: 37 UTF-16 units but 67 bytes
  t.equal(statusOf(() => parseXml('<a>' + 'é'.repeat(30) + '</a>', { maxBytes: 60 })), 413, 'counted in bytes, not characters');
  t.equal(parseXml('<a>' + 'é'.repeat(30) + '</a>', { maxBytes: 67 }).text.length, 30, 'exactly at the limit is fine');
});

t.test('refuses what is not well-formed UTF-8 XML with 400', async (t) => {
  t.equal(statusOf(() => parseXml('just some text')), 400, 'not XML');
  t.equal(statusOf(() => parseXml('')), 400, 'empty');
  t.equal(statusOf(() => parseXml('   \n')), 400, 'whitespace only');
  t.equal(statusOf(() => parseXml('<a><b></a>')), 400, 'mismatched tags');
  t.equal(statusOf(() => parseXml('<a><b/>')), 400, 'unclosed root');
  t.equal(statusOf(() => parseXml('<a/><b/>')), 400, 'two roots');
  t.equal(statusOf(() => parseXml('<a/>trailing')), 400, 'text after root');
  t.equal(statusOf(() => parseXml('<a x="1" x="2"/>')), 400, 'duplicate attribute');
  t.equal(statusOf(() => parseXml('<a flag/>')), 400, 'attribute without value');
  t.equal(statusOf(() => parseXml(Buffer.from([0x3c, 0x61, 0x3e, 0xe9, 0x3c, 0x2f, 0x61, 0x3e]))), 400, 'Latin-1 bytes');
  t.equal(statusOf(() => parseXml(Buffer.from('\ufeff<a/>', 'utf16le'))), 400, 'UTF-16');
  t.equal(statusOf(() => parseXml('<?xml version="1.0" encoding="ISO-8859-1"?><a/>')), 400, 'declared Latin-1');
  t.equal(statusOf(() => parseXml('<a __proto__="x"/>')), 400, 'prototype-polluting attribute name');
  t.equal(statusOf(() => parseXml('<a>'.repeat(5000) + '</a>'.repeat(5000))), 400, 'absurd nesting');
});
