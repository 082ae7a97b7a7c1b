/**
 * The pure parts of the history: the restore update (turns any later state back
 * into an older one's content, for every kind of shared type, and merges with
 * concurrent edits) and the JSON diff between two versions.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { restoreUpdate } from '../src/history/restore.js';
import { diffJson } from '../src/history/json-diff.js';
import { docToJson } from '../src/hub/doc-json.js';

const stateOf = (doc: Y.Doc): Uint8Array => Y.encodeStateAsUpdate(doc);

/** A node's view: a document built only from updates, with no types declared. */
const received = (...updates: Uint8Array[]): Y.Doc => {
  const doc = new Y.Doc();
  for (const u of updates) Y.applyUpdate(doc, u);
  return doc;
};

describe('restore update', () => {
  it('brings back text, maps, arrays and XML as they were, and empties types made since', () => {
    const doc = new Y.Doc();
    doc.getText('t').insert(0, 'hello world');
    doc.getMap('m').set('a', 1);
    doc.getMap('m').set('nested', new Y.Map([['x', 1]]));
    doc.getArray('list').push([1, 2, 3]);
    const para = new Y.XmlElement('p');
    para.insert(0, [new Y.XmlText('para')]);
    doc.getXmlFragment('xml').insert(0, [para]);
    const old = stateOf(doc);
    const before = docToJson(received(old));

    doc.getText('t').delete(0, 6);
    doc.getText('t').insert(0, 'bye ');
    doc.getMap('m').set('a', 2);
    doc.getMap('m').delete('nested');
    doc.getMap('m').set('b', 3);
    doc.getArray('list').delete(1, 1);
    doc.getArray('list').push([4]);
    doc.getXmlFragment('xml').delete(0, 1);
    doc.getArray('made-since').push(['new']);

    const node = received(stateOf(doc));
    const update = restoreUpdate(stateOf(node), old)!;
    Y.applyUpdate(node, update);
    const after = docToJson(node);
    assert.deepEqual({ ...after, 'made-since': undefined }, { ...before, 'made-since': undefined });
    assert.deepEqual(after['made-since'], []);
  });

  it('is undefined when nothing happened since the version', () => {
    const doc = new Y.Doc();
    doc.getText('t').insert(0, 'same');
    assert.equal(restoreUpdate(stateOf(doc), stateOf(doc)), undefined);
  });

  it('merges with an edit made concurrently, which survives the restore', () => {
    const doc = new Y.Doc();
    doc.getText('t').insert(0, 'one');
    const old = stateOf(doc);
    doc.getText('t').insert(3, ' two');
    const update = restoreUpdate(stateOf(doc), old)!;
    const other = received(stateOf(doc));
    other.getText('t').insert(0, '>');
    Y.applyUpdate(other, update);
    Y.applyUpdate(doc, update);
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(other, Y.encodeStateVector(doc)));
    assert.equal(doc.getText('t').toString(), '>one');
    assert.equal(other.getText('t').toString(), '>one');
  });
});

describe('JSON diff', () => {
  it('lists additions, removals and changes by path', () => {
    assert.deepEqual(
      diffJson(
        { m: { a: 1, b: { c: true } }, list: [1, 2, 3], t: 'x' },
        { m: { a: 2, b: { c: true }, d: null }, list: [1, 5], t: 'x' },
      ),
      [
        { op: 'change', path: ['m', 'a'], old: 1, value: 2 },
        { op: 'add', path: ['m', 'd'], value: null },
        { op: 'change', path: ['list', 1], old: 2, value: 5 },
        { op: 'remove', path: ['list', 2], old: 3 },
      ],
    );
  });

  it('is empty for equal values and whole for a change of kind', () => {
    assert.deepEqual(diffJson({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), []);
    assert.deepEqual(diffJson({ a: [1] }, { a: { 0: 1 } }), [
      { op: 'change', path: ['a'], old: [1], value: { 0: 1 } },
    ]);
  });
});
