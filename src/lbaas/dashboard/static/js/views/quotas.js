// Quotas: the project's limits and the deployment defaults; administrators also see and
// change every project's custom quota.

import { ApiError, del, get, put, LB } from '../api.js';
import { getAll } from '../collections.js';
import { h, replace, table, toast } from '../dom.js';
import { confirmDialog, formDialog } from '../forms.js';
import { state } from '../state.js';

const RESOURCES = [['loadbalancer', 'Load Balancers'], ['listener', 'Listeners'], ['pool', 'Pools'],
  ['member', 'Members'], ['healthmonitor', 'Health Monitors'], ['l7policy', 'L7 Policies'], ['l7rule', 'L7 Rules']];

const limit = (v) => (v === null || v === undefined ? 'Default' : v === -1 ? 'Unlimited' : String(v));

function quotaTable(columns, rows) {
  return table(['Resource', ...columns], RESOURCES.map(([key, text]) => h('tr', { 'data-resource': key },
    h('th', { scope: 'row' }, text), rows.map((q) => h('td', null, limit(q[key]))))));
}

function editQuota(projectId, quota, after) {
  const specs = RESOURCES.map(([key, text]) => ({ name: key, label: text, type: 'number', clear: null,
    help: key === 'loadbalancer' ? '-1 is unlimited; empty uses the default.' : undefined }));
  return formDialog({
    title: `Quotas of project ${projectId}`, specs, values: quota, mode: 'edit',
    save: async (body) => {
      if (Object.keys(body).length) await put(`${LB}/quotas/${encodeURIComponent(projectId)}`, { quota: body });
      toast('Quotas saved.');
      await after();
      return true;
    },
  });
}

export async function quotasView(el) {
  document.title = 'Quotas · lbaas';
  const who = state.who;
  const mine = h('div');
  const others = h('div');
  el.append(h('div', { class: 'page-head' }, h('h1', null, 'Quotas')),
    h('section', { class: 'block', 'aria-labelledby': 'h-own' }, h('h2', { id: 'h-own' }, `Project ${who.project || who.project_id}`), mine),
    others);
  const draw = async () => {
    const [own, defaults] = await Promise.all([
      get(`${LB}/quotas/${encodeURIComponent(who.project_id)}`).then((b) => b.quota),
      get(`${LB}/quotas/defaults`).then((b) => b.quota).catch(() => null),
    ]);
    replace(mine, quotaTable(['Limit', defaults ? 'Default' : null].filter(Boolean), [own, defaults].filter(Boolean)));
    if (!who.is_admin) return;
    let all;
    try {
      all = await getAll(`${LB}/quotas`, 'quotas');
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) return;
      throw err;
    }
    const projectInput = h('input', { id: 'quota-project', name: 'project_id', autocomplete: 'off' });
    replace(others, h('section', { class: 'block', 'aria-labelledby': 'h-all' }, h('h2', { id: 'h-all' }, 'Custom quotas of every project'),
      table(['Project', ...RESOURCES.map(([, t]) => t), 'Actions'], all.map((q) => h('tr', { 'data-project': q.project_id },
        h('th', { scope: 'row' }, q.project_id), RESOURCES.map(([key]) => h('td', null, limit(q[key]))),
        h('td', { class: 'row-actions' },
          h('button', { type: 'button', class: 'small secondary', 'aria-label': `Edit quotas of ${q.project_id}`,
            onclick: () => editQuota(q.project_id, q, draw) }, 'Edit'),
          h('button', { type: 'button', class: 'small danger', 'aria-label': `Reset quotas of ${q.project_id}`,
            onclick: () => confirmDialog({ title: 'Reset Quotas', confirmLabel: 'Reset',
              message: `Set every quota of project ${q.project_id} back to the default?`,
              action: async () => { await del(`${LB}/quotas/${encodeURIComponent(q.project_id)}`); await draw(); } }) }, 'Reset')))),
      'No project has custom quotas.'),
      h('form', { class: 'toolbar', novalidate: true, onsubmit: async (ev) => {
        ev.preventDefault();
        const id = projectInput.value.trim();
        if (!id) { projectInput.focus(); return; }
        const current = await get(`${LB}/quotas/${encodeURIComponent(id)}`).then((b) => b.quota).catch(() => ({}));
        editQuota(id, current, draw);
      } }, h('label', { for: 'quota-project' }, 'Project ID'), projectInput,
      h('button', { type: 'submit', class: 'secondary' }, 'Set Quotas'))));
  };
  await draw();
}
