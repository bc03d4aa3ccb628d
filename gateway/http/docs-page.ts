/**
 * /docs: a browsable, self-contained HTML rendering of the OpenAPI document
 * (no CDN, no extra package, so it works on an offline cluster). It is built
 * from the same document /openapi.json serves, so it cannot drift either.
 */

type Json = Record<string, unknown>;

const esc = (s: unknown): string =>
  String(s ?? '').replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function resolveRef(doc: Json, schema: unknown): Json {
  const ref = (schema as Json | undefined)?.$ref;
  if (typeof ref !== 'string') return (schema as Json) ?? {};
  const name = ref.split('/').pop()!;
  return ((doc.components as Json | undefined)?.schemas as Json | undefined)?.[name] as Json;
}

function schemaName(schema: unknown): string {
  const ref = (schema as Json | undefined)?.$ref;
  return typeof ref === 'string' ? ref.split('/').pop()! : '';
}

function renderSchema(doc: Json, schema: unknown): string {
  const name = schemaName(schema);
  const body = JSON.stringify(resolveRef(doc, schema), null, 2);
  return `${name ? `<a href="#schema-${esc(name)}">${esc(name)}</a>` : ''}<details><summary>schema</summary><pre>${esc(body)}</pre></details>`;
}

export function renderDocsPage(doc: Json): string {
  const info = (doc.info as Json) ?? {};
  const paths = (doc.paths as Record<string, Record<string, Json>>) ?? {};
  const ops: string[] = [];
  const toc: string[] = [];
  for (const [path, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const id = `${method}-${path}`.replace(/[^a-zA-Z0-9]+/g, '-');
      toc.push(
        `<li><a href="#${id}"><code class="m ${esc(method)}">${esc(method.toUpperCase())}</code> ${esc(path)}</a></li>`,
      );
      const params = ((op.parameters as Json[]) ?? [])
        .map(
          (p) =>
            `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : ''}</td><td>${esc((p.schema as Json | undefined)?.type)}</td><td>${esc(p.description ?? (p.schema as Json | undefined)?.description)}</td></tr>`,
        )
        .join('');
      const content = ((op.requestBody as Json | undefined)?.content as Record<string, Json>) ?? {};
      const bodies = Object.entries(content)
        .map(([type, c]) => `<div><code>${esc(type)}</code> ${renderSchema(doc, c.schema)}</div>`)
        .join('');
      const responses = Object.entries((op.responses as Record<string, Json>) ?? {})
        .map(([status, r]) => {
          const types = Object.entries((r.content as Record<string, Json>) ?? {})
            .map(([type, c]) => `<code>${esc(type)}</code> ${renderSchema(doc, c.schema)}`)
            .join('');
          return `<tr><td>${esc(status)}</td><td>${esc(r.description)}</td><td>${types}</td></tr>`;
        })
        .join('');
      ops.push(`<section id="${id}">
<h3><code class="m ${esc(method)}">${esc(method.toUpperCase())}</code> <code>${esc(path)}</code></h3>
<p>${esc(op.summary)}</p>${op.description ? `<p>${esc(op.description)}</p>` : ''}
${params ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>type</th><th>about</th></tr>${params}</table>` : ''}
${bodies ? `<h4>Request body</h4>${bodies}` : ''}
<h4>Responses</h4><table><tr><th>status</th><th>meaning</th><th>body</th></tr>${responses}</table>
</section>`);
    }
  }
  const schemas = Object.entries(((doc.components as Json | undefined)?.schemas as Json) ?? {})
    .map(
      ([name, s]) =>
        `<section id="schema-${esc(name)}"><h3>${esc(name)}</h3><pre>${esc(JSON.stringify(s, null, 2))}</pre></section>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)} — docs</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f6f8fa;padding:.6rem;overflow:auto}
section{border-top:1px solid #ddd;padding:.4rem 0}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #e3e3e3;padding:.25rem .5rem;text-align:left;vertical-align:top}
.m{display:inline-block;min-width:4.5em;text-align:center;border-radius:3px;color:#fff;padding:0 .3em}
.get{background:#2b7bb9}.post{background:#3a9a4a}.put{background:#c4862b}.delete{background:#b93a2b}
ul{columns:2}a{color:#0b5cad;text-decoration:none}
</style></head><body>
<h1>${esc(info.title)} <small>v${esc(info.version)}</small></h1>
<p>${esc(info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}).</p>
<h2>Endpoints</h2><ul>${toc.join('')}</ul>
<h2>Operations</h2>${ops.join('\n')}
<h2>Schemas</h2>${schemas}
</body></html>`;
}
