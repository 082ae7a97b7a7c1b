/**
 * Low-latency lookups: an ACL editor on `acl/<space>` (map `grants`: subject →
 * actions, `*` for all) and a lookup box answered by the read-only `can` query
 * from the node's replica, with its round-trip latency.
 */
import type { DocHandle } from '@stateweave/client';
import { formatMs, h } from './dom.js';
import type { Session } from './session.js';
import { saveIndicator } from './status.js';

const parseActions = (raw: string): string[] => [
  ...new Set(raw.split(/[\s,]+/).filter((a) => a !== '')),
];

export const createPermissionsView = (
  session: Session,
  track: (handle: DocHandle) => void,
): HTMLElement => {
  const handle = session.client.open(`acl/${session.space}`);
  track(handle);
  const grants = handle.doc.getMap<string[]>('grants');
  const rows = h('tbody');

  const render = (): void => {
    const subjects = [...grants.keys()].sort();
    rows.replaceChildren(
      ...subjects.map((subject) => {
        const remove = h('button', { class: 'btn small', title: `remove ${subject}` }, 'Remove');
        remove.addEventListener('click', () => grants.delete(subject));
        return h(
          'tr',
          { 'data-testid': 'grant', 'data-subject': subject },
          h('td', {}, h('code', {}, subject)),
          h('td', {}, ...(grants.get(subject) ?? []).map((a) => h('span', { class: 'chip' }, a))),
          h('td', { class: 'num' }, remove),
        );
      }),
    );
    if (subjects.length === 0)
      rows.append(
        h(
          'tr',
          {},
          h('td', { colspan: 3, class: 'muted' }, 'No grants yet: everything is denied.'),
        ),
      );
  };
  grants.observe(render);
  render();

  const subject = h('input', {
    placeholder: 'subject, e.g. alice',
    'data-testid': 'grant-subject',
  });
  const actions = h('input', {
    placeholder: 'actions, e.g. read, write or *',
    'data-testid': 'grant-actions',
  });
  const grantForm = h(
    'form',
    { class: 'row' },
    subject,
    actions,
    h('button', { class: 'btn primary', type: 'submit', 'data-testid': 'grant-add' }, 'Grant'),
  );
  grantForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const who = subject.value.trim();
    const what = parseActions(actions.value);
    if (who === '' || what.length === 0) return;
    grants.set(who, what);
    subject.value = '';
    actions.value = '';
    subject.focus();
  });

  const askSubject = h('input', { placeholder: 'subject', 'data-testid': 'can-subject' });
  const askAction = h('input', { placeholder: 'action', 'data-testid': 'can-action' });
  const answer = h(
    'div',
    { class: 'answer', 'data-testid': 'can-answer' },
    'Ask whether a subject may do an action.',
  );
  const latency = h('span', { class: 'muted', 'data-testid': 'can-latency' });
  const askForm = h(
    'form',
    { class: 'row' },
    askSubject,
    askAction,
    h('button', { class: 'btn primary', type: 'submit', 'data-testid': 'can-ask' }, 'Check'),
  );
  let asked = 0;
  askForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = {
      acl: session.space,
      subject: askSubject.value.trim(),
      action: askAction.value.trim(),
    };
    if (input.subject === '' || input.action === '') return;
    const id = ++asked;
    const started = performance.now();
    answer.textContent = '…';
    answer.dataset.state = 'pending';
    delete answer.dataset.question;
    session.client.query('can', input).then(
      ({ allowed }) => {
        if (id !== asked) return; // a newer question is on its way
        const ms = performance.now() - started;
        answer.textContent = `${input.subject} ${allowed ? 'may' : 'may not'} ${input.action}`;
        answer.dataset.state = allowed ? 'allowed' : 'denied';
        answer.dataset.question = `${input.subject}:${input.action}`;
        latency.textContent = `answered in ${formatMs(ms)}`;
      },
      (err: unknown) => {
        if (id !== asked) return;
        answer.textContent = `error: ${(err as Error).message}`;
        answer.dataset.state = 'error';
      },
    );
  });

  return h(
    'section',
    { class: 'view', 'data-view': 'permissions' },
    h(
      'div',
      { class: 'view-head' },
      h(
        'div',
        {},
        h('h1', {}, 'Permissions'),
        h(
          'p',
          { class: 'sub' },
          `ACL document acl/${session.space}; lookups run the read-only can query on the node's local replica.`,
        ),
      ),
      saveIndicator(handle, 'acl-save-state'),
    ),
    h(
      'div',
      { class: 'grid-2' },
      h(
        'div',
        { class: 'card' },
        h('h2', {}, 'Access control list'),
        grantForm,
        h(
          'table',
          { class: 'table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Subject'), h('th', {}, 'Actions'), h('th', {}))),
          rows,
        ),
      ),
      h('div', { class: 'card' }, h('h2', {}, 'Lookup'), askForm, answer, latency),
    ),
  );
};
