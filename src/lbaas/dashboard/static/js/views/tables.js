// Tables of a load balancer's children, each row with its actions (edit, delete, enable).

import { del, post, put, LB } from '../api.js';
import { badge, h, label, link, table, toast } from '../dom.js';
import { confirmDialog, formDialog } from '../forms.js';
import * as R from '../resources.js';

export const PATHS = {
  listener: (o) => `${LB}/listeners/${o.id}`,
  pool: (o) => `${LB}/pools/${o.id}`,
  member: (o) => `${LB}/pools/${o.pool_id}/members/${o.id}`,
  healthmonitor: (o) => `${LB}/healthmonitors/${o.id}`,
  l7policy: (o) => `${LB}/l7policies/${o.id}`,
  rule: (o) => `${LB}/l7policies/${o.l7policy_id}/rules/${o.id}`,
};
const NOUN = { listener: 'Listener', pool: 'Pool', member: 'Member', healthmonitor: 'Health Monitor',
  l7policy: 'L7 Policy', rule: 'L7 Rule' };

export function poolOptions(pools) {
  return [['', 'None'], ...pools.map((p) => [p.id, `${label(p)} (${p.protocol})`])];
}

function button(text, what, onclick, cls = 'small secondary') {
  return h('button', { type: 'button', class: cls, 'aria-label': `${text} ${what}`, onclick }, text);
}

export function editAction(kind, obj, specs, after) {
  return button('Edit', `${NOUN[kind].toLowerCase()} ${label(obj)}`, () => formDialog({
    title: `Edit ${NOUN[kind]}`, specs, values: obj, mode: 'edit',
    save: async (body) => {
      if (Object.keys(body).length) await put(PATHS[kind](obj), { [kind]: body });
      toast(`${NOUN[kind]} ${label(obj)} updated.`);
      await after();
      return true;
    },
  }));
}

export function deleteAction(kind, obj, after, extra = '') {
  return button('Delete', `${NOUN[kind].toLowerCase()} ${label(obj)}`, () => confirmDialog({
    title: `Delete ${NOUN[kind]}`,
    message: `Delete ${NOUN[kind].toLowerCase()} “${label(obj)}”?${extra}`,
    confirmLabel: 'Delete',
    action: async () => {
      await del(PATHS[kind](obj));
      toast(`Deleting ${NOUN[kind].toLowerCase()} ${label(obj)}.`);
      await after();
    },
  }), 'small danger');
}

const COLLECTIONS = { listener: `${LB}/listeners`, pool: `${LB}/pools`,
  healthmonitor: `${LB}/healthmonitors`, l7policy: `${LB}/l7policies` };

// Create one object: POST {kind: {...form, ...parents}} to `path` (default: its collection).
export function createDialog({ kind, specs, parents = {}, path, after, title, intro }) {
  return formDialog({
    title: title || `Create ${NOUN[kind]}`, specs, values: {}, mode: 'create', intro,
    save: async (body) => {
      await post(path || COLLECTIONS[kind], { [kind]: { ...body, ...parents } });
      toast(`${NOUN[kind]} created.`);
      await after();
      return true;
    },
  });
}

export function listenersTable(tree, after) {
  const pools = new Map(tree.pools.map((p) => [p.id, p]));
  const rows = tree.listeners.map((l) => h('tr', { 'data-id': l.id },
    h('td', null, link(`#/listeners/${l.id}`, label(l))),
    h('td', null, l.protocol), h('td', null, String(l.protocol_port)),
    h('td', null, l.default_pool_id && pools.has(l.default_pool_id)
      ? link(`#/pools/${l.default_pool_id}`, label(pools.get(l.default_pool_id))) : ''),
    h('td', null, badge(l.operating_status)), h('td', null, badge(l.provisioning_status)),
    h('td', { class: 'row-actions' }, editAction('listener', l, R.listener(() => poolOptions(tree.pools)), after),
      deleteAction('listener', l, after, ' Its L7 policies go with it; pools stay.'))));
  return table(['Name', 'Protocol', 'Port', 'Default Pool', 'Operating Status', 'Provisioning Status', 'Actions'],
    rows, 'No listeners.');
}

export function poolsTable(tree, after) {
  const rows = tree.pools.map((p) => h('tr', { 'data-id': p.id },
    h('td', null, link(`#/pools/${p.id}`, label(p))),
    h('td', null, p.protocol), h('td', null, p.lb_algorithm),
    h('td', null, String((tree.members[p.id] || []).length)),
    h('td', null, tree.monitors[p.id] ? tree.monitors[p.id].type : 'None'),
    h('td', null, badge(p.operating_status)), h('td', null, badge(p.provisioning_status)),
    h('td', { class: 'row-actions' }, editAction('pool', p, R.pool, after),
      deleteAction('pool', p, after, ' Its members and health monitor go with it.'))));
  return table(['Name', 'Protocol', 'Algorithm', 'Members', 'Health Monitor', 'Operating Status',
    'Provisioning Status', 'Actions'], rows, 'No pools.');
}

export function memberToggle(m, after) {
  const enable = !m.admin_state_up;
  const what = `member ${m.name || `${m.address}:${m.protocol_port}`}`;
  return button(enable ? 'Enable' : 'Disable', what, async () => {
    try {
      await put(PATHS.member(m), { member: { admin_state_up: enable } });
      toast(`${enable ? 'Enabling' : 'Disabling'} ${what}.`);
      await after();
    } catch (err) { toast(err.message, 'error'); }
  });
}

export function membersTable(pools, membersByPool, after, showPool = true) {
  const rows = pools.flatMap((p) => (membersByPool[p.id] || []).map((raw) => {
    const m = { ...raw, pool_id: p.id };
    return h('tr', { 'data-id': m.id, 'data-address': m.address },
      showPool ? h('td', null, link(`#/pools/${p.id}`, label(p))) : null,
      h('td', null, m.name || ''), h('td', null, m.address), h('td', null, String(m.protocol_port)),
      h('td', null, String(m.weight)), h('td', null, m.admin_state_up ? 'Yes' : 'No'),
      h('td', null, badge(m.operating_status)), h('td', null, badge(m.provisioning_status)),
      h('td', { class: 'row-actions' }, memberToggle(m, after), editAction('member', m, R.member(false), after),
        deleteAction('member', m, after)));
  }));
  return table([showPool ? 'Pool' : null, 'Name', 'IP Address', 'Port', 'Weight', 'Enabled', 'Operating Status',
    'Provisioning Status', 'Actions'].filter(Boolean), rows, 'No members.');
}

export function monitorsTable(pools, monitors, after) {
  const rows = pools.filter((p) => monitors[p.id]).map((p) => {
    const m = monitors[p.id];
    return h('tr', { 'data-id': m.id },
      h('td', null, m.name || ''), h('td', null, link(`#/pools/${p.id}`, label(p))), h('td', null, m.type),
      h('td', null, `${m.delay}s / ${m.timeout}s`), h('td', null, `${m.max_retries} up / ${m.max_retries_down} down`),
      h('td', null, m.url_path ? `${m.http_method} ${m.url_path} → ${m.expected_codes}` : ''),
      h('td', null, badge(m.operating_status)), h('td', null, badge(m.provisioning_status)),
      h('td', { class: 'row-actions' }, editAction('healthmonitor', m, R.monitor, after),
        deleteAction('healthmonitor', m, after)));
  });
  return table(['Name', 'Pool', 'Type', 'Delay / Timeout', 'Retries', 'HTTP Check', 'Operating Status',
    'Provisioning Status', 'Actions'], rows, 'No health monitors.');
}

export function policiesTable(listeners, policiesByListener, pools, after, showListener = true) {
  const poolById = new Map(pools.map((p) => [p.id, p]));
  const rows = listeners.flatMap((l) => (policiesByListener[l.id] || []).map((p) => h('tr', { 'data-id': p.id },
    h('td', null, link(`#/l7policies/${p.id}`, label(p))),
    showListener ? h('td', null, link(`#/listeners/${l.id}`, label(l))) : null,
    h('td', null, String(p.position)), h('td', null, p.action),
    h('td', null, p.redirect_pool_id && poolById.has(p.redirect_pool_id)
      ? link(`#/pools/${p.redirect_pool_id}`, label(poolById.get(p.redirect_pool_id)))
      : (p.redirect_url || p.redirect_prefix || '')),
    h('td', null, String((p.rules || []).length)),
    h('td', null, badge(p.operating_status)), h('td', null, badge(p.provisioning_status)),
    h('td', { class: 'row-actions' }, editAction('l7policy', p, R.l7policy(poolOptions(pools)), after),
      deleteAction('l7policy', p, after, ' Its rules go with it.')))));
  return table(['Name', showListener ? 'Listener' : null, 'Position', 'Action', 'Redirect To', 'Rules',
    'Operating Status', 'Provisioning Status', 'Actions'].filter(Boolean), rows, 'No L7 policies.');
}

export function rulesTable(policy, rules, after) {
  const rows = rules.map((raw) => {
    const r = { ...raw, l7policy_id: policy.id };
    return h('tr', { 'data-id': r.id },
      h('td', null, r.type), h('td', null, r.compare_type), h('td', null, r.key || ''), h('td', null, r.value),
      h('td', null, r.invert ? 'Yes' : 'No'),
      h('td', null, badge(r.operating_status)), h('td', null, badge(r.provisioning_status)),
      h('td', { class: 'row-actions' }, editAction('rule', r, R.l7rule, after), deleteAction('rule', { ...r, name: `${r.type} ${r.value}` }, after)));
  });
  return table(['Type', 'Compare Type', 'Key', 'Value', 'Invert', 'Operating Status', 'Provisioning Status', 'Actions'],
    rows, 'No rules.');
}
