// Create a load balancer in the five steps of octavia-dashboard's workflow: Load Balancer
// Details, Listener Details, Pool Details, Pool Members, Monitor Details. "Create Load
// Balancer" sends one single-call ("graph") create, so the API validates the whole tree and
// either all of it exists afterwards or none of it; its message lands beside its field.

import { post, LB } from '../api.js';
import { h, replace, toast } from '../dom.js';
import { controlForMessage, FieldSet, showFieldError } from '../forms.js';
import * as R from '../resources.js';

const TIMEOUT_DEFAULTS = { timeout_client_data: '50000', timeout_member_connect: '5000',
  timeout_member_data: '50000', timeout_tcp_inspect: '0', connection_limit: '-1' };

// Wizard fields leave API defaults to the API: defaults become placeholders.
function placeholders(specs) {
  return specs.map((sp) => (sp.name in TIMEOUT_DEFAULTS
    ? { ...sp, value: undefined, placeholder: TIMEOUT_DEFAULTS[sp.name] } : sp));
}

function toggle(id, text, checked) {
  const input = h('input', { type: 'checkbox', id, checked });
  return { input, element: h('div', { class: 'field check toggle' }, input, h('label', { for: id }, text)) };
}

class MemberRows {
  constructor() {
    this.rows = [];
    this.body = h('div', { class: 'member-rows' });
    this.add = h('button', { type: 'button', class: 'secondary', onclick: () => this.addRow(true) }, 'Add Member');
    this.element = h('div', null, this.body, this.add);
    this.addRow(false);
  }

  specs() {
    return R.member(false).filter((sp) => ['address', 'subnet_id', 'protocol_port', 'weight'].includes(sp.name));
  }

  addRow(focus) {
    const fields = new FieldSet(this.specs(), {}, { prefix: `member${this.rows.length}` });
    const row = { fields };
    const remove = h('button', { type: 'button', class: 'small secondary', onclick: () => {
      this.rows = this.rows.filter((r) => r !== row);
      row.element.remove();
      this.renumber();
    } }, 'Remove');
    row.heading = h('h3', { class: 'row-title' });
    row.remove = remove;
    row.element = h('fieldset', { class: 'member-row' }, h('legend', null, row.heading), fields.element,
      h('div', { class: 'row-actions' }, remove));
    this.rows.push(row);
    this.body.append(row.element);
    this.renumber();
    if (focus) fields.controls[0].input.focus();
  }

  renumber() {
    this.rows.forEach((r, i) => {
      r.heading.textContent = `Member ${i + 1}`;
      r.remove.setAttribute('aria-label', `Remove member ${i + 1}`);
    });
  }

  filled() {
    return this.rows.filter((r) => r.fields.controls.some((c) => c.spec.name !== 'weight' && c.input.value.trim()));
  }

  controls() { return this.rows.flatMap((r) => r.fields.controls); }
}

export async function wizardView(el) {
  document.title = 'Create Load Balancer · lbaas';
  const lbFields = new FieldSet(R.loadbalancer, {}, { prefix: 'lb' });
  const listenerFields = new FieldSet(placeholders(R.listener()), {}, { prefix: 'listener' });
  const poolFields = new FieldSet(R.pool, { name: 'pool1' }, { prefix: 'pool' });
  const monitorFields = new FieldSet(R.monitor, {}, { prefix: 'monitor' });
  const members = new MemberRows();
  const withListener = toggle('create-listener', 'Create Listener', true);
  const withPool = toggle('create-pool', 'Create Pool', true);
  const withMonitor = toggle('create-monitor', 'Create Health Monitor', true);
  const needsPool = () => h('p', { class: 'muted needs-pool' }, 'Members and the health monitor belong to a pool: turn on “Create Pool” in Pool Details.');

  const steps = [
    { id: 'loadbalancer', title: 'Load Balancer Details', intro: 'Provide the details for the load balancer.',
      parts: [lbFields.element], fields: () => lbFields.controls, active: () => true },
    { id: 'listener', title: 'Listener Details', intro: 'Provide the details for the listener.',
      parts: [withListener.element, listenerFields.element], fields: () => listenerFields.controls,
      active: () => withListener.input.checked },
    { id: 'pool', title: 'Pool Details', intro: 'Provide the details for the pool.',
      parts: [withPool.element, poolFields.element], fields: () => poolFields.controls, active: () => withPool.input.checked },
    { id: 'members', title: 'Pool Members', intro: 'Add members to the load balancer pool.',
      parts: [needsPool(), members.element], fields: () => members.controls(), active: () => withPool.input.checked },
    { id: 'monitor', title: 'Monitor Details', intro: 'Provide the details for the health monitor.',
      parts: [needsPool(), withMonitor.element, monitorFields.element], fields: () => monitorFields.controls,
      active: () => withPool.input.checked && withMonitor.input.checked },
  ];
  let at = 0;
  const alertBox = h('div', { class: 'alert', role: 'alert', tabindex: '-1', hidden: true });
  const stepList = h('ol', { class: 'steps' });
  const back = h('button', { type: 'button', class: 'secondary' }, 'Back');
  const next = h('button', { type: 'button', class: 'primary' }, 'Next');
  const create = h('button', { type: 'submit', class: 'primary' }, 'Create Load Balancer');
  steps.forEach((st, i) => {
    st.element = h('fieldset', { class: 'step', id: `step-${st.id}`, hidden: i !== 0 },
      h('legend', null, `Step ${i + 1} of ${steps.length}: ${st.title}`), h('p', { class: 'muted' }, st.intro), st.parts);
  });

  const sync = () => {
    listenerFields.element.hidden = !withListener.input.checked;
    poolFields.element.hidden = !withPool.input.checked;
    monitorFields.element.hidden = !withMonitor.input.checked;
    const pool = withPool.input.checked;
    members.element.hidden = !pool;
    withMonitor.element.hidden = !pool;
    if (!pool) monitorFields.element.hidden = true;
    el.querySelectorAll('.needs-pool').forEach((p) => { p.hidden = pool; });
  };

  const show = (i, focusField) => {
    at = i;
    steps.forEach((st, j) => { st.element.hidden = j !== i; });
    replace(stepList, steps.map((st, j) => h('li', { 'aria-current': j === i ? 'step' : null, class: j < i ? 'done' : null },
      h('button', { type: 'button', class: 'link', onclick: () => show(j) }, `${j + 1}. ${st.title}`))));
    back.hidden = i === 0;
    next.hidden = i === steps.length - 1;
    create.hidden = i !== steps.length - 1;
    if (i === 2 && !poolFields.raw().protocol) {
      const proto = R.poolProtocolFor(listenerFields.raw().protocol);
      const c = poolFields.controls.find((x) => x.spec.name === 'protocol');
      if (proto && c) c.input.value = proto;
    }
    if (focusField !== false) {
      const first = steps[i].element.querySelector('input:not([hidden]), select');
      if (first) first.focus();
    }
  };

  // The fields a step requires must be filled before "Next".
  const missing = (i) => {
    const st = steps[i];
    if (!st.active()) return null;
    const rows = i === 3 ? members.filled().flatMap((r) => r.fields.controls) : st.fields();
    return rows.find((c) => c.spec.required && !c.wrap.hidden && !c.wrap.closest('[hidden]') && !c.input.value.trim()) || null;
  };

  const checkStep = (i) => {
    const c = missing(i);
    if (!c) return true;
    showFieldError(c, 'This field is required.');
    c.input.focus();
    return false;
  };

  const body = () => {
    const lb = lbFields.read();
    let pool = null;
    if (withPool.input.checked) {
      pool = poolFields.read();
      const rows = members.filled().map((r) => r.fields.read());
      if (rows.length) pool.members = rows;
      if (withMonitor.input.checked) pool.healthmonitor = monitorFields.read();
    }
    if (withListener.input.checked) {
      const listener = listenerFields.read();
      if (pool) listener.default_pool = pool;
      lb.listeners = [listener];
    } else if (pool) {
      lb.pools = [pool];
    }
    return { loadbalancer: lb };
  };

  const form = h('form', { class: 'wizard card', novalidate: true, 'aria-labelledby': 'wizard-title' },
    h('nav', { 'aria-label': 'Steps' }, stepList), alertBox, steps.map((st) => st.element),
    h('div', { class: 'actions' }, h('a', { href: '#/loadbalancers', class: 'button secondary' }, 'Cancel'), back, next, create));
  form.addEventListener('change', sync);
  back.addEventListener('click', () => show(at - 1));
  next.addEventListener('click', () => { if (checkStep(at)) show(at + 1); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    alertBox.hidden = true;
    [lbFields, listenerFields, poolFields, monitorFields, ...members.rows.map((r) => r.fields)].forEach((f) => f.clearErrors());
    for (let i = 0; i < steps.length; i += 1) {
      if (missing(i)) { show(i, false); checkStep(i); return; }
    }
    create.disabled = true;
    try {
      const made = await post(`${LB}/loadbalancers`, body());
      toast(`Load balancer ${made.loadbalancer.name || made.loadbalancer.id} is being created.`);
      window.location.hash = `#/loadbalancers/${made.loadbalancer.id}`;
    } catch (err) {
      create.disabled = false;
      const all = steps.filter((st) => st.active()).flatMap((st) => st.fields().map((c) => [st, c]));
      // look in every step: the field may be hidden only because its step is not shown
      steps.forEach((st) => { st.element.hidden = false; });
      const c = controlForMessage(err.message, all.map(([, x]) => x));
      const owner = c ? steps.indexOf(all.find(([, x]) => x === c)[0]) : at;
      show(owner, false);
      if (c) {
        showFieldError(c, err.message);
        c.input.focus();
      } else {
        alertBox.textContent = err.message;
        alertBox.hidden = false;
        alertBox.focus();
      }
    }
  });

  el.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/loadbalancers' }, 'Load Balancers'), ' › Create'),
    h('h1', { id: 'wizard-title' }, 'Create Load Balancer'), form);
  sync();
  show(0);
}
