const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The distinct `{{variable}}` names a template uses, in order of first appearance. */
export function promptVariables(...templates: string[]): string[] {
  const names = new Set<string>();
  for (const t of templates) for (const m of t.matchAll(VARIABLE)) names.add(m[1]!);
  return [...names];
}

/** Describes a malformed placeholder (`{{ 1x }}`, an unclosed `{{`), or returns null when the template is well-formed. */
export function templateProblem(template: string): string | null {
  const rest = template.replace(VARIABLE, '');
  const at = rest.search(/\{\{|\}\}/);
  if (at === -1) return null;
  return `malformed placeholder near "${rest.slice(Math.max(0, at - 10), at + 12)}": use {{name}} with letters, digits and _`;
}

/** Fills `{{variables}}`; unknown ones become empty so the caller never hears braces read aloud. */
export function renderPrompt(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(VARIABLE, (_, name: string) => values[name] ?? '');
}
