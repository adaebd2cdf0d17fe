// Who is signed in (set once at start; read by views that depend on the role or project).

export const state = { who: null };
