// The pages of a listener (its L7 policies), a pool (members and health monitor) and an L7
// policy (its rules), each refreshed every few seconds.

import { ApiError, get, LB } from '../api.js';
import { getAll } from '../collections.js';
import { badge, details, h, label, link, replace, section, when } from '../dom.js';
import * as R from '../resources.js';
import * as T from './tables.js';

const EVERY = 3000;



function header(crumbs, title, obj, ...actions) {
  const trail = crumbs.flatMap(([href, text]) => [link(href, text), ' › ']);
  return [h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('#/loadbalancers', 'Load Balancers'), ' › ', trail, title),
    h('div', { class: 'page-head' }, h('h1', null, title),
      h('span', { class: 'badges' }, badge(obj.provisioning_status), ' ', badge(obj.operating_status)),
      h('div', { class: 'actions' }, actions))];
}

// Load, draw, and redraw when something changed; a 404 ends the page.
async function livePage(el, view, load, draw) {
  let shown = '';
  const refresh = async () => {
    let data;
    try {
      data = await load();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        view.stop();
        replace(el, h('h1', null, 'Deleted'), h('p', null, 'This object no longer exists. ',
          link('#/loadbalancers', 'Back to the load balancers')));
        return;
      }
      throw err;
    }
    const sig = JSON.stringify(data);
    if (sig !== shown) { shown = sig; replace(el, draw(data, refresh)); }
  };
  await refresh();
  view.every(EVERY, refresh);
}

const lbOf = (obj) => (obj.loadbalancers && obj.loadbalancers[0] ? obj.loadbalancers[0].id : null);

export function listenerView(el, view, id) {
  return livePage(el, view, async () => {
    const listener = (await get(`${LB}/listeners/${id}`)).listener;
    const lbId = lbOf(listener);
    const [lb, pools, policies] = await Promise.all([
      get(`${LB}/loadbalancers/${lbId}`).then((b) => b.loadbalancer),
      getAll(`${LB}/pools`, 'pools', { loadbalancer_id: lbId }),
      getAll(`${LB}/l7policies`, 'l7policies', { listener_id: id }),
    ]);
    return { listener, lb, pools, policies };
  }, ({ listener: l, lb, pools, policies }, after) => {
    document.title = `${label(l)} · Listener · lbaas`;
    const back = async () => { window.location.hash = `#/loadbalancers/${lb.id}`; };
    const pool = pools.find((p) => p.id === l.default_pool_id);
    const headers = Object.entries(l.insert_headers || {}).filter(([, v]) => String(v).toLowerCase() === 'true').map(([k]) => k);
    return [
      ...header([[`#/loadbalancers/${lb.id}`, label(lb)]], label(l), l,
        T.editAction('listener', l, R.listener(() => T.poolOptions(pools)), after),
        T.deleteAction('listener', l, back, ' Its L7 policies go with it; pools stay.')),
      details([['ID', l.id], ['Description', l.description], ['Protocol', l.protocol], ['Port', String(l.protocol_port)],
        ['Default Pool', pool ? link(`#/pools/${pool.id}`, label(pool)) : 'None'],
        ['Connection Limit', String(l.connection_limit)], ['Certificate', l.default_tls_container_ref],
        ['Allowed CIDRs', (l.allowed_cidrs || []).join(', ') || 'Any'], ['Insert Headers', headers.join(', ')],
        ['Timeouts (ms)', `client ${l.timeout_client_data}, connect ${l.timeout_member_connect}, member ${l.timeout_member_data}, inspect ${l.timeout_tcp_inspect}`],
        ['Admin State Up', l.admin_state_up ? 'Yes' : 'No'], ['Created', when(l.created_at)], ['Updated', when(l.updated_at)]]),
      section('L7 Policies', 'h-l7policies', h('div', { class: 'section-actions' },
        h('button', { type: 'button', class: 'small primary', onclick: () => T.createDialog({
          kind: 'l7policy', specs: R.l7policy(T.poolOptions(pools)), parents: { listener_id: l.id }, after }) }, 'Add L7 Policy')),
      T.policiesTable([l], { [l.id]: policies }, pools, after, false)),
    ];
  });
}

export function poolView(el, view, id) {
  return livePage(el, view, async () => {
    const pool = (await get(`${LB}/pools/${id}`)).pool;
    const [lb, members, monitor] = await Promise.all([
      get(`${LB}/loadbalancers/${lbOf(pool)}`).then((b) => b.loadbalancer),
      getAll(`${LB}/pools/${id}/members`, 'members'),
      pool.healthmonitor_id ? get(`${LB}/healthmonitors/${pool.healthmonitor_id}`).then((b) => b.healthmonitor) : null,
    ]);
    return { pool, lb, members, monitor };
  }, ({ pool: p, lb, members, monitor }, after) => {
    document.title = `${label(p)} · Pool · lbaas`;
    const back = async () => { window.location.hash = `#/loadbalancers/${lb.id}`; };
    const persistence = p.session_persistence
      ? `${p.session_persistence.type}${p.session_persistence.cookie_name ? ` (${p.session_persistence.cookie_name})` : ''}` : 'None';
    const monitorBlock = monitor
      ? [details([['Type', monitor.type], ['Delay / Timeout', `${monitor.delay}s / ${monitor.timeout}s`],
        ['Max Retries', `${monitor.max_retries} (down ${monitor.max_retries_down})`],
        ['HTTP Check', monitor.url_path ? `${monitor.http_method} ${monitor.url_path} → ${monitor.expected_codes}` : ''],
        ['Status', h('span', null, badge(monitor.provisioning_status), ' ', badge(monitor.operating_status))]]),
      h('div', { class: 'section-actions' }, T.editAction('healthmonitor', monitor, R.monitor, after),
        T.deleteAction('healthmonitor', monitor, after))]
      : [h('p', { class: 'muted' }, 'No health monitor: members are not checked.'),
        h('div', { class: 'section-actions' }, h('button', { type: 'button', class: 'small primary', onclick: () => T.createDialog({
          kind: 'healthmonitor', specs: R.monitor, parents: { pool_id: p.id }, after }) }, 'Create Health Monitor'))];
    return [
      ...header([[`#/loadbalancers/${lb.id}`, label(lb)]], label(p), p,
        T.editAction('pool', p, R.pool, after),
        T.deleteAction('pool', p, back, ' Its members and health monitor go with it.')),
      details([['ID', p.id], ['Description', p.description], ['Protocol', p.protocol], ['Algorithm', p.lb_algorithm],
        ['Session Persistence', persistence], ['TLS to Members', p.tls_enabled ? 'Yes' : 'No'],
        ['Admin State Up', p.admin_state_up ? 'Yes' : 'No'], ['Created', when(p.created_at)], ['Updated', when(p.updated_at)]]),
      section('Members', 'h-members', h('div', { class: 'section-actions' },
        h('button', { type: 'button', class: 'small primary', onclick: () => T.createDialog({
          kind: 'member', specs: R.member(false), path: `${LB}/pools/${p.id}/members`, after }) }, 'Add Member')),
      T.membersTable([p], { [p.id]: members }, after, false)),
      section('Health Monitor', 'h-monitor', ...monitorBlock),
    ];
  });
}

export function l7policyView(el, view, id) {
  return livePage(el, view, async () => {
    const policy = (await get(`${LB}/l7policies/${id}`)).l7policy;
    const listener = (await get(`${LB}/listeners/${policy.listener_id}`)).listener;
    const lbId = lbOf(listener);
    const [lb, pools, rules] = await Promise.all([
      get(`${LB}/loadbalancers/${lbId}`).then((b) => b.loadbalancer),
      getAll(`${LB}/pools`, 'pools', { loadbalancer_id: lbId }),
      getAll(`${LB}/l7policies/${id}/rules`, 'rules'),
    ]);
    return { policy, listener, lb, pools, rules };
  }, ({ policy: p, listener, lb, pools, rules }, after) => {
    document.title = `${label(p)} · L7 Policy · lbaas`;
    const back = async () => { window.location.hash = `#/listeners/${listener.id}`; };
    const target = pools.find((x) => x.id === p.redirect_pool_id);
    return [
      ...header([[`#/loadbalancers/${lb.id}`, label(lb)], [`#/listeners/${listener.id}`, label(listener)]], label(p), p,
        T.editAction('l7policy', p, R.l7policy(T.poolOptions(pools)), after),
        T.deleteAction('l7policy', p, back, ' Its rules go with it.')),
      details([['ID', p.id], ['Description', p.description], ['Action', p.action], ['Position', String(p.position)],
        ['Redirect Pool', target ? link(`#/pools/${target.id}`, label(target)) : ''], ['Redirect URL', p.redirect_url],
        ['Redirect Prefix', p.redirect_prefix], ['Redirect HTTP Code', p.redirect_http_code ? String(p.redirect_http_code) : ''],
        ['Admin State Up', p.admin_state_up ? 'Yes' : 'No'], ['Created', when(p.created_at)]]),
      section('L7 Rules', 'h-rules', h('div', { class: 'section-actions' },
        h('button', { type: 'button', class: 'small primary', onclick: () => T.createDialog({
          kind: 'rule', specs: R.l7rule, path: `${LB}/l7policies/${p.id}/rules`, after, title: 'Create L7 Rule' }) }, 'Add L7 Rule')),
      T.rulesTable(p, rules, after)),
    ];
  });
}
