// Amphorae (admin): role, host, status, addresses, and a failover button per amphora.

import { ApiError, put } from '../api.js';
import { getAll } from '../collections.js';
import { badge, h, link, replace, shortId, table, toast, when } from '../dom.js';
import { confirmDialog } from '../forms.js';

const COLUMNS = ['ID', 'Load Balancer', 'Role', 'Status', 'Host', 'Management IP', 'VIP', 'Certificate Expires', 'Actions'];

export async function amphoraeView(el, view) {
  document.title = 'Amphorae · lbaas';
  const holder = h('div');
  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });
  el.append(h('div', { class: 'page-head' }, h('h1', null, 'Amphorae')), summary, holder);
  let shown = '';
  const refresh = async () => {
    let amphorae;
    try {
      amphorae = await getAll('v2/octavia/amphorae', 'amphorae');
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        view.stop();
        replace(holder, h('div', { class: 'alert', role: 'alert' }, `Only administrators see amphorae: ${err.message}`));
        return;
      }
      throw err;
    }
    const sig = JSON.stringify(amphorae);
    if (sig === shown) return;
    shown = sig;
    summary.textContent = `${amphorae.length} amphorae.`;
    replace(holder, table(COLUMNS, amphorae.map((a) => h('tr', { 'data-id': a.id },
      h('td', { title: a.id }, shortId(a.id)),
      h('td', null, a.loadbalancer_id ? link(`#/loadbalancers/${a.loadbalancer_id}`, shortId(a.loadbalancer_id)) : ''),
      h('td', null, a.role || ''), h('td', null, badge(a.status)),
      h('td', null, a.host || a.compute_host || a.cached_zone || a.compute_id || ''),
      h('td', null, a.lb_network_ip || ''), h('td', null, a.ha_ip || ''), h('td', null, when(a.cert_expiration)),
      h('td', null, h('button', {
        type: 'button', class: 'small secondary', 'aria-label': `Failover amphora ${shortId(a.id)}`,
        disabled: a.status !== 'ALLOCATED',
        onclick: () => confirmDialog({
          title: 'Failover Amphora', confirmLabel: 'Failover',
          message: `Replace amphora ${a.id} with a new one? Its load balancer keeps serving from the others, if any.`,
          action: async () => {
            await put(`v2/octavia/amphorae/${a.id}/failover`);
            toast(`Failing over amphora ${shortId(a.id)}.`);
            await refresh();
          },
        }),
      }, 'Failover')))), 'No amphorae.'));
  };
  await refresh();
  view.every(5000, refresh);
}
