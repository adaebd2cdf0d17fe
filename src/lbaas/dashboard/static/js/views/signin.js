// Keystone sign-in: user name, password and project; the token stays with the server.

import { session } from '../api.js';
import { h } from '../dom.js';
import { FieldSet, showFieldError } from '../forms.js';

const FIELDS = [
  { name: 'username', label: 'User Name', required: true, autocomplete: 'username' },
  { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
  { name: 'project', label: 'Project', required: true },
  { name: 'domain', label: 'Domain', value: 'Default' },
];

export function signInView(el, done) {
  document.title = 'Sign In · lbaas';
  const fields = new FieldSet(FIELDS, {}, { prefix: 'signin' });
  const alertBox = h('div', { class: 'alert', role: 'alert', tabindex: '-1', hidden: true });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign In');
  const form = h('form', { class: 'card signin', novalidate: true }, h('h1', null, 'Sign in'),
    h('p', { class: 'muted' }, 'With your OpenStack (Keystone) account.'), alertBox, fields.element,
    h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    fields.clearErrors();
    alertBox.hidden = true;
    const body = fields.read();
    const missing = fields.controls.find((c) => c.spec.required && !body[c.spec.name]);
    if (missing) { showFieldError(missing, 'This field is required.'); missing.input.focus(); return; }
    button.disabled = true;
    try {
      done(await session.signIn(body));
    } catch (err) {
      const field = err.body && err.body.field && fields.controls.find((c) => c.spec.name === err.body.field);
      if (field) { showFieldError(field, err.message); field.input.focus(); } else {
        alertBox.textContent = err.message;
        alertBox.hidden = false;
        alertBox.focus();
      }
      button.disabled = false;
    }
  });
  el.append(form);
  fields.controls[0].input.focus();
}
