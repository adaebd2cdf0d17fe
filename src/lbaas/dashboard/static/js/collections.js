// Reading whole collections (following the API's markers) and one load balancer's tree.

import { get, query, LB } from './api.js';

const PAGE = 1000;

// Every item of a collection, page by page with the API's keyset markers.
export async function getAll(path, key, params = {}) {
  const items = [];
  let marker;
  for (;;) {
    const body = await get(path + query({ ...params, limit: PAGE, marker }));
    const page = body[key] || [];
    items.push(...page);
    if (page.length < PAGE) return items;
    marker = page[page.length - 1].id;
  }
}

// A load balancer with its listeners, L7 policies and rules, pools, members and monitors.
export async function loadTree(lbId) {
  const [lb, listeners, pools] = await Promise.all([
    get(`${LB}/loadbalancers/${lbId}`).then((b) => b.loadbalancer),
    getAll(`${LB}/listeners`, 'listeners', { loadbalancer_id: lbId }),
    getAll(`${LB}/pools`, 'pools', { loadbalancer_id: lbId }),
  ]);
  const [policies, members, monitors] = await Promise.all([
    Promise.all(listeners.map((l) => getAll(`${LB}/l7policies`, 'l7policies', { listener_id: l.id }))),
    Promise.all(pools.map((p) => getAll(`${LB}/pools/${p.id}/members`, 'members'))),
    Promise.all(pools.map((p) => (p.healthmonitor_id
      ? get(`${LB}/healthmonitors/${p.healthmonitor_id}`).then((b) => b.healthmonitor).catch(() => null)
      : null))),
  ]);
  const tree = { lb, listeners, pools, policies: {}, members: {}, monitors: {} };
  listeners.forEach((l, i) => { tree.policies[l.id] = policies[i]; });
  pools.forEach((p, i) => { tree.members[p.id] = members[i]; tree.monitors[p.id] = monitors[i]; });
  return tree;
}

// id -> operating/provisioning status from GET .../status (one request, the live part).
export async function loadStatuses(lbId) {
  const body = await get(`${LB}/loadbalancers/${lbId}/status`);
  const out = new Map();
  const walk = (node) => {
    if (!node || typeof node !== 'object') return;
    if (node.id && node.operating_status) out.set(node.id, node);
    for (const key of ['listeners', 'pools', 'members']) (node[key] || []).forEach(walk);
    if (node.health_monitor) walk(node.health_monitor);
  };
  walk(body.statuses.loadbalancer);
  return out;
}
