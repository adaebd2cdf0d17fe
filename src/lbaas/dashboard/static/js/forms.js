// Forms described as field lists whose `name` is the API attribute; the API's validation
// message is shown beside the field it concerns (found from the message itself).

import { ApiError } from './api.js';
import { h, replace } from './dom.js';

let uid = 0;

function optionNodes(options, value) {
  return options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value ?? '') }, text));
}

// One labelled control with its help and error slots.
export function control(spec, value, prefix) {
  const id = `${prefix}-${spec.name.replace(/[^\w-]/g, '_')}-${uid++}`;
  const errorId = `${id}-error`;
  const helpId = spec.help ? `${id}-help` : null;
  const describedBy = [helpId, errorId].filter(Boolean).join(' ');
  const common = { id, name: spec.name, 'aria-describedby': describedBy };
  let input;
  if (spec.type === 'select') {
    input = h('select', common);
    const fill = (opts) => replace(input, optionNodes(opts, value));
    if (typeof spec.options === 'function') {
      fill([['', 'Loading…']]);
      Promise.resolve(spec.options()).then(fill).catch(() => fill([['', '(could not be loaded)']]));
    } else {
      fill(spec.options);
    }
  } else if (spec.type === 'checkbox') {
    input = h('input', { ...common, type: 'checkbox', checked: value === undefined ? spec.value : value });
  } else if (spec.type === 'textarea' || spec.type === 'lines') {
    const text = Array.isArray(value) ? value.join('\n') : (value ?? '');
    input = h('textarea', { ...common, rows: 2, placeholder: spec.placeholder });
    input.value = text;
  } else {
    input = h('input', {
      ...common, type: spec.type === 'number' ? 'number' : (spec.type || 'text'),
      placeholder: spec.placeholder, autocomplete: spec.autocomplete || 'off',
      inputmode: spec.type === 'number' ? 'numeric' : undefined,
    });
    input.value = value ?? '';
  }
  if (spec.required) input.setAttribute('aria-required', 'true');
  const text = [spec.label, spec.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null];
  const error = h('span', { class: 'field-error', id: errorId, 'aria-live': 'polite' });
  const help = spec.help ? h('span', { class: 'help', id: helpId }, spec.help) : null;
  const wrap = spec.type === 'checkbox'
    ? h('div', { class: 'field check', 'data-field': spec.name }, input, h('label', { for: id }, text), help, error)
    : h('div', { class: 'field', 'data-field': spec.name }, h('label', { for: id }, text), input, help, error);
  return { spec, input, wrap, error };
}

export function readControl({ spec, input }, mode) {
  let value;
  if (spec.type === 'checkbox') return input.checked;
  if (spec.type === 'lines') {
    value = input.value.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
    return value.length ? value : (mode === 'edit' ? null : undefined);
  }
  const raw = input.value.trim();
  if (raw === '') {
    if (mode !== 'edit') return undefined;
    return 'clear' in spec ? spec.clear : null;
  }
  if (spec.type === 'number') {
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw;
  }
  return spec.type === 'textarea' ? input.value : raw;
}

// A group of controls for one object, with visibility rules (`when`) and reading back.
export class FieldSet {
  constructor(specs, values, { mode = 'create', prefix = 'f' } = {}) {
    this.mode = mode;
    this.values = values || {};
    this.controls = specs
      .filter((sp) => (mode === 'create' ? sp.edit !== 'only' : sp.create !== 'only'))
      .map((sp) => control(sp, sp.get ? sp.get(this.values) : (this.values[sp.name] ?? (mode === 'create' ? sp.value : undefined)), prefix));
    this.element = h('div', { class: 'fields' }, this.controls.map((c) => c.wrap));
    this.element.addEventListener('change', () => this.refresh());
    this.element.addEventListener('input', (ev) => this.clearError(ev.target));
    this.refresh();
  }

  // Every field's current text (or checkbox state), over the object's own values: a field
  // that cannot change (a listener's protocol on edit) still decides what else is shown.
  raw() {
    const out = { ...this.values };
    for (const c of this.controls) out[c.spec.name] = c.spec.type === 'checkbox' ? c.input.checked : c.input.value;
    return out;
  }

  refresh() {
    const raw = this.raw();
    for (const c of this.controls) c.wrap.hidden = Boolean(c.spec.when && !c.spec.when(raw));
  }

  // The API body: visible fields only; on edit only those that changed.
  read() {
    const out = {};
    for (const c of this.controls) {
      if (c.wrap.hidden || c.spec.local) continue;
      const value = readControl(c, this.mode);
      if (value === undefined) continue;
      if (this.mode === 'edit') {
        const before = c.spec.get ? c.spec.get(this.values) : this.values[c.spec.name];
        if (JSON.stringify(before ?? null) === JSON.stringify(value)
            || (before === undefined && value === null)) continue;
      }
      if (c.spec.put) c.spec.put(out, value, this.raw()); else out[c.spec.name] = value;
    }
    return out;
  }

  clearError(target) {
    const c = this.controls.find((x) => x.input === target);
    if (c) { c.error.textContent = ''; c.input.removeAttribute('aria-invalid'); }
  }

  clearErrors() {
    for (const c of this.controls) { c.error.textContent = ''; c.input.removeAttribute('aria-invalid'); }
  }
}

export function showFieldError(c, message) {
  c.error.textContent = message;
  c.input.setAttribute('aria-invalid', 'true');
}

// The control an API message is about: "field/attribute <name>" (with "Value: '<v>'" to tell
// same-named fields apart), else the longest field name the message mentions.
export function controlForMessage(message, controls) {
  const visible = controls.filter((c) => !c.wrap.hidden && !c.wrap.closest('[hidden]'));
  const attr = /field\/attribute '?([\w:-]+)/.exec(message);
  if (attr) {
    const named = visible.filter((c) => c.spec.name === attr[1] || c.spec.apiName === attr[1]);
    const value = /Value: '(.*?)'\./.exec(message);
    if (value) {
      const exact = named.find((c) => String(readControl(c, 'create') ?? '') === value[1]);
      if (exact) return exact;
    }
    if (named.length) return named[0];
  }
  const names = [...new Set(visible.map((c) => c.spec.apiName || c.spec.name))]
    .sort((a, b) => b.length - a.length);
  for (const name of names) {
    const re = new RegExp(`(^|[^\\w])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^\\w]|$)`);
    if (re.test(message)) return visible.find((c) => (c.spec.apiName || c.spec.name) === name);
  }
  return null;
}

// Put an error beside its field, or in the form's alert box; returns the control used.
export function placeError(err, controls, alertBox) {
  const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  const c = controlForMessage(message, controls);
  if (c) {
    showFieldError(c, message);
    c.input.focus();
  } else if (alertBox) {
    alertBox.textContent = message;
    alertBox.hidden = false;
    alertBox.focus();
  }
  return c;
}

function dialogShell(title, body, submitLabel, danger) {
  const titleId = `dlg-${uid++}`;
  const alertBox = h('div', { class: 'alert', role: 'alert', tabindex: '-1', hidden: true });
  const submit = h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, submitLabel);
  const cancel = h('button', { type: 'button', class: 'secondary', value: 'cancel' }, 'Cancel');
  const form = h('form', { novalidate: true }, h('h2', { id: titleId }, title), alertBox, body,
    h('div', { class: 'actions' }, cancel, submit));
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId }, form);
  return { dlg, form, submit, cancel, alertBox };
}

// A modal dialog; `action()` may throw an ApiError, shown beside its field or at the top.
export function openDialog({ title, body, submitLabel, danger, controls, action }) {
  const { dlg, form, submit, cancel, alertBox } = dialogShell(title, body, submitLabel, danger);
  document.body.append(dlg);
  return new Promise((resolve) => {
    const finish = (result) => { dlg.close(); dlg.remove(); resolve(result); };
    cancel.addEventListener('click', () => finish(null));
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); finish(null); });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      alertBox.hidden = true;
      (controls || []).forEach((c) => { c.error.textContent = ''; c.input.removeAttribute('aria-invalid'); });
      submit.disabled = true;
      try {
        finish(await action());
      } catch (err) {
        placeError(err, controls || [], alertBox);
        submit.disabled = false;
      }
    });
    dlg.showModal();
    const first = form.querySelector('input:not([type=hidden]), select, textarea');
    (first || submit).focus();
  });
}

// Create or edit one object: `save(body)` performs the API call.
export function formDialog({ title, specs, values, mode, submitLabel, save, intro }) {
  const fields = new FieldSet(specs, values, { mode, prefix: 'dlg' });
  const body = [intro ? h('p', null, intro) : null, fields.element];
  return openDialog({
    title, body, submitLabel: submitLabel || (mode === 'edit' ? 'Save' : 'Create'),
    controls: fields.controls, action: () => save(fields.read()),
  });
}

export function confirmDialog({ title, message, confirmLabel, action }) {
  return openDialog({
    title, body: h('p', null, message), submitLabel: confirmLabel, danger: true,
    controls: [], action: async () => { await action(); return true; },
  });
}
