// The load balancers: search and pagination in the page over one lean listing (only the
// columns shown), refreshed every few seconds; fast at thousands of rows because only the
// visible page is drawn.

import { del, LB } from '../api.js';
import { getAll } from '../collections.js';
import { badge, h, link, replace, table, toast, when } from '../dom.js';
import { confirmDialog } from '../forms.js';
import { flavors } from '../lookups.js';

const PAGE_SIZE = 25;
const FIELDS = ['id', 'name', 'vip_address', 'provisioning_status', 'operating_status', 'provider',
  'flavor_id', 'created_at'];
const COLUMNS = ['Name', 'VIP Address', 'Provisioning Status', 'Operating Status', 'Provider', 'Flavor',
  'Created', 'Actions'];

export function deleteLoadBalancer(lb, after) {
  return confirmDialog({
    title: 'Delete Load Balancer',
    message: `Delete load balancer “${lb.name || lb.id}”? Its listeners, pools, members, health `
      + 'monitors and L7 policies are deleted with it (cascade). This cannot be undone.',
    confirmLabel: 'Delete',
    action: async () => {
      await del(`${LB}/loadbalancers/${lb.id}?cascade=true`);
      toast(`Deleting ${lb.name || lb.id}.`);
      if (after) await after();
    },
  });
}

export async function listView(el, view) {
  document.title = 'Load Balancers · lbaas';
  let all = [];
  let page = 0;
  let flavorNames = new Map();
  const search = h('input', { type: 'search', id: 'lb-search', name: 'search', placeholder: 'Name, ID, VIP address or status',
    autocomplete: 'off', 'aria-controls': 'lb-table' });
  const summary = h('p', { class: 'muted', id: 'lb-summary', 'aria-live': 'polite' });
  const holder = h('div', { id: 'lb-table' });
  const prev = h('button', { type: 'button', class: 'secondary' }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next');
  const pageText = h('span', { class: 'muted' });

  const matching = () => {
    const q = search.value.trim().toLowerCase();
    if (!q) return all;
    return all.filter((lb) => [lb.name, lb.id, lb.vip_address, lb.provisioning_status, lb.operating_status,
      lb.provider].some((v) => v && String(v).toLowerCase().includes(q)));
  };

  const draw = () => {
    const rows = matching();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    const shown = rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    replace(holder, table(COLUMNS, shown.map((lb) => h('tr', { 'data-id': lb.id },
      h('td', null, link(`#/loadbalancers/${lb.id}`, lb.name || lb.id)),
      h('td', null, lb.vip_address || ''),
      h('td', null, badge(lb.provisioning_status)),
      h('td', null, badge(lb.operating_status)),
      h('td', null, lb.provider || ''),
      h('td', null, lb.flavor_id ? (flavorNames.get(lb.flavor_id) || lb.flavor_id) : ''),
      h('td', null, when(lb.created_at)),
      h('td', null, h('button', {
        type: 'button', class: 'small danger', 'aria-label': `Delete ${lb.name || lb.id}`,
        disabled: lb.provisioning_status === 'PENDING_DELETE',
        onclick: () => deleteLoadBalancer(lb, refresh),
      }, 'Delete')))), search.value ? 'No load balancer matches.' : 'No load balancers yet.'));
    const first = rows.length ? page * PAGE_SIZE + 1 : 0;
    summary.textContent = search.value
      ? `${rows.length} of ${all.length} load balancers match; showing ${first}–${page * PAGE_SIZE + shown.length}.`
      : `${all.length} load balancers; showing ${first}–${page * PAGE_SIZE + shown.length}.`;
    pageText.textContent = `Page ${page + 1} of ${pages}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  };

  const refresh = async () => {
    const start = performance.now();
    all = await getAll(`${LB}/loadbalancers`, 'loadbalancers', { fields: FIELDS });
    all.sort((a, b) => (b.created_at || '').localeCompare(a.created_at || '')
      || (a.name || '').localeCompare(b.name || '') || a.id.localeCompare(b.id));
    draw();
    performance.measure('lbaas:list-refresh', { start }); // read by the scale test
  };

  search.addEventListener('input', () => { page = 0; draw(); });
  prev.addEventListener('click', () => { page -= 1; draw(); });
  next.addEventListener('click', () => { page += 1; draw(); });

  el.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Load Balancers'),
      h('div', { class: 'actions' }, link('#/loadbalancers/new', 'Create Load Balancer', { class: 'button primary' }))),
    h('div', { class: 'toolbar' }, h('label', { for: 'lb-search' }, 'Search'), search),
    summary, holder,
    h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, pageText, next),
  );
  flavors().then((list) => { flavorNames = new Map(list.map((f) => [f.id, f.name])); draw(); }).catch(() => {});
  await refresh();
  view.every(5000, refresh);
}
