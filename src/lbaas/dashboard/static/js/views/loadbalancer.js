// One load balancer: details, the live resource map, live statistics, its children in
// tables, and the actions on it (edit, failover, floating IP, delete, add listener/pool).

import { get, post, put, ApiError, LB } from '../api.js';
import { Chart, formatBytes } from '../chart.js';
import { loadStatuses, loadTree } from '../collections.js';
import { badge, details, h, label, link, replace, section, toast, when } from '../dom.js';
import { confirmDialog, control, formDialog, openDialog } from '../forms.js';
import { externalNetworks, subnetName } from '../lookups.js';
import { ResourceMap } from '../map.js';
import * as R from '../resources.js';
import { deleteLoadBalancer } from './list.js';
import * as T from './tables.js';

const STATUS_EVERY = 2000;
const TREE_EVERY = 10000;



async function floatingIpFor(lb) {
  if (!lb.vip_port_id) return null;
  const body = await get(`networking/v2.0/floatingips?port_id=${encodeURIComponent(lb.vip_port_id)}`);
  return (body.floatingips || [])[0] || null;
}

function associateDialog(lb, after) {
  const spec = { name: 'floatingip_id', label: 'Floating IP', type: 'select', required: true, options: async () => {
    const [fips, nets] = await Promise.all([get('networking/v2.0/floatingips').then((b) => b.floatingips), externalNetworks()]);
    return [...fips.filter((f) => !f.port_id).map((f) => [f.id, f.floating_ip_address]),
      ...nets.map((n) => [`new:${n.id}`, `Allocate a new address from ${n.name || n.id}`])];
  } };
  const c = control(spec, '', 'fip');
  return openDialog({
    title: 'Associate Floating IP', submitLabel: 'Associate', controls: [c],
    body: [h('p', null, `The floating address forwards to the VIP ${lb.vip_address}.`), c.wrap],
    action: async () => {
      const choice = c.input.value;
      if (choice.startsWith('new:')) {
        await post('networking/v2.0/floatingips', { floatingip: { floating_network_id: choice.slice(4), port_id: lb.vip_port_id } });
      } else {
        await put(`networking/v2.0/floatingips/${choice}`, { floatingip: { port_id: lb.vip_port_id } });
      }
      toast('Floating IP associated.');
      await after();
      return true;
    },
  });
}

function charts() {
  const connections = new Chart({ id: 'chart-connections', title: 'Connections', series: [
    { key: 'active', label: 'Active', cls: 's1' }, { key: 'rate', label: 'New per second', cls: 's2' }] });
  const traffic = new Chart({ id: 'chart-traffic', title: 'Bytes in / out per second', format: formatBytes, series: [
    { key: 'in', label: 'In', cls: 's1' }, { key: 'out', label: 'Out', cls: 's3' }] });
  const errors = new Chart({ id: 'chart-errors', title: 'Request errors per second', series: [
    { key: 'errors', label: 'Errors', cls: 's4' }] });
  let last = null;
  const push = (stats) => {
    const t = Date.now();
    if (last) {
      const dt = Math.max(0.001, (t - last.t) / 1000);
      const rate = (k) => Math.max(0, (stats[k] - last.stats[k]) / dt);
      connections.push(t, { active: stats.active_connections, rate: rate('total_connections') });
      traffic.push(t, { in: rate('bytes_in'), out: rate('bytes_out') });
      errors.push(t, { errors: rate('request_errors') });
    }
    last = { t, stats };
  };
  return { element: h('div', { class: 'charts' }, connections.element, traffic.element, errors.element), push };
}

export async function loadBalancerView(el, view, lbId) {
  let tree = await loadTree(lbId);
  let fip = null;
  const map = new ResourceMap(`Resource map of load balancer ${label(tree.lb)}`);
  const stats = charts();
  const head = h('div');
  const info = h('div');
  const tables = h('div');

  let loadedAt = Date.now();
  const reload = async () => {
    try {
      tree = await loadTree(lbId);
      loadedAt = Date.now();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        view.stop();
        replace(el, h('h1', null, 'Load balancer deleted'),
          h('p', null, 'This load balancer no longer exists. ', link('#/loadbalancers', 'Back to the list')));
        return;
      }
      throw err;
    }
    fip = await floatingIpFor(tree.lb).catch(() => null);
    const sig = JSON.stringify([tree, fip]);
    if (sig !== drawn) render();  // unchanged: keep the tables (and the focus in them)
    await refreshStatuses();
  };

  const refreshStatuses = async () => {
    const statuses = await loadStatuses(lbId);
    const known = new Set([tree.lb.id, ...tree.listeners.map((x) => x.id), ...tree.pools.map((x) => x.id),
      ...Object.values(tree.members).flat().map((x) => x.id),
      ...Object.values(tree.monitors).filter(Boolean).map((x) => x.id)]);
    const lbStatus = statuses.get(lbId);
    // something new appeared (made elsewhere): read the structure again, at most every 2 s
    if ([...statuses.keys()].some((id) => !known.has(id)) && Date.now() - loadedAt > STATUS_EVERY) {
      await reload();
      return;
    }
    if (!lbStatus) return;
    // the live statuses go into the tables too (redrawn only when one changed)
    const objects = [tree.lb, ...tree.listeners, ...tree.pools, ...Object.values(tree.members).flat(),
      ...Object.values(tree.monitors).filter(Boolean)];
    for (const obj of objects) {
      const live = statuses.get(obj.id);
      if (live) Object.assign(obj, { operating_status: live.operating_status, provisioning_status: live.provisioning_status });
    }
    if (JSON.stringify([tree, fip]) !== drawn) render();
    map.update(tree, statuses);
  };

  let drawn = '';
  const render = () => {
    drawn = JSON.stringify([tree, fip]);
    const lb = tree.lb;
    document.title = `${label(lb)} · Load Balancers · lbaas`;
    const actions = h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => formDialog({
        title: 'Edit Load Balancer', specs: R.loadbalancer, values: lb, mode: 'edit',
        save: async (body) => {
          if (Object.keys(body).length) await put(`${LB}/loadbalancers/${lb.id}`, { loadbalancer: body });
          toast('Load balancer updated.');
          await reload();
          return true;
        },
      }) }, 'Edit'),
      h('button', { type: 'button', class: 'secondary', onclick: () => confirmDialog({
        title: 'Failover Load Balancer', confirmLabel: 'Failover',
        message: `Rebuild every amphora of “${label(lb)}”? Traffic moves to the new amphorae.`,
        action: async () => { await put(`${LB}/loadbalancers/${lb.id}/failover`); toast('Failover started.'); await reload(); },
      }) }, 'Failover'),
      fip
        ? h('button', { type: 'button', class: 'secondary', onclick: () => confirmDialog({
          title: 'Disassociate Floating IP', confirmLabel: 'Disassociate',
          message: `Stop forwarding ${fip.floating_ip_address} to this load balancer?`,
          action: async () => {
            await put(`networking/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: null } });
            toast('Floating IP disassociated.');
            await reload();
          },
        }) }, 'Disassociate Floating IP')
        : h('button', { type: 'button', class: 'secondary', onclick: () => associateDialog(lb, reload) }, 'Associate Floating IP'),
      h('button', { type: 'button', class: 'danger', onclick: () => deleteLoadBalancer(lb, async () => {
        window.location.hash = '#/loadbalancers';
      }) }, 'Delete'));
    replace(head,
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('#/loadbalancers', 'Load Balancers'), ' › ', label(lb)),
      h('div', { class: 'page-head' }, h('h1', null, label(lb)), h('span', { class: 'badges' },
        badge(lb.provisioning_status), ' ', badge(lb.operating_status)), actions));
    const subnet = h('span', null, lb.vip_subnet_id);
    subnetName(lb.vip_subnet_id).then((n) => { subnet.textContent = n; }).catch(() => {});
    replace(info, details([
      ['ID', lb.id], ['Description', lb.description], ['VIP Address', lb.vip_address], ['VIP Subnet', subnet],
      ['Floating IP', fip ? fip.floating_ip_address : 'None'], ['Provider', lb.provider],
      ['Flavor', lb.flavor_id || 'Default'], ['Availability Zone', lb.availability_zone],
      ['Admin State Up', lb.admin_state_up ? 'Yes' : 'No'], ['Project', lb.project_id],
      ['Created', when(lb.created_at)], ['Updated', when(lb.updated_at)],
    ]));
    const addListener = h('button', { type: 'button', class: 'small primary', onclick: () => T.createDialog({
      kind: 'listener', specs: R.listener(), parents: { loadbalancer_id: lb.id }, after: reload }) }, 'Add Listener');
    const addPool = h('button', { type: 'button', class: 'small primary', onclick: () => T.createDialog({
      kind: 'pool', after: reload, parents: { loadbalancer_id: lb.id },
      specs: [{ name: 'listener_id', label: 'Listener (becomes its default pool)', type: 'select',
        options: [['', 'None'], ...tree.listeners.filter((l) => !l.default_pool_id).map((l) => [l.id, `${label(l)} (${l.protocol}:${l.protocol_port})`])] },
      ...R.pool] }) }, 'Add Pool');
    replace(tables,
      section('Listeners', 'h-listeners', h('div', { class: 'section-actions' }, addListener), T.listenersTable(tree, reload)),
      section('Pools', 'h-pools', h('div', { class: 'section-actions' }, addPool), T.poolsTable(tree, reload)),
      section('Members', 'h-members', T.membersTable(tree.pools, tree.members, reload)),
      section('Health Monitors', 'h-monitors', T.monitorsTable(tree.pools, tree.monitors, reload)),
      section('L7 Policies', 'h-l7policies', T.policiesTable(tree.listeners, tree.policies, tree.pools, reload)));
  };

  el.append(head, info,
    section('Resource map', 'h-map', h('p', { class: 'legend' },
      ['ONLINE', 'DEGRADED', 'ERROR', 'NO_MONITOR', 'DRAINING', 'OFFLINE'].map((st) => [badge(st), ' '])), map.element),
    section('Statistics', 'h-stats', stats.element),
    tables);
  fip = await floatingIpFor(tree.lb).catch(() => null);
  render();
  await refreshStatuses();
  const pollStats = async () => stats.push((await get(`${LB}/loadbalancers/${lbId}/stats`)).stats);
  await pollStats().catch(() => {});
  view.every(STATUS_EVERY, refreshStatuses);
  view.every(STATUS_EVERY, pollStats);
  view.every(TREE_EVERY, reload);
}
