// The demo's bundle sizes, from Vite's manifest (run `npm run build -w demo-app` first):
// what the first page loads, and what each tab and the Hocuspocus page add to it,
// raw and gzipped. Printed as a table and, with --json, as JSON.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const manifest = JSON.parse(await readFile(`${dist}.vite/manifest.json`, 'utf8'));

/** Every file a chunk loads before it runs: itself, its CSS, its static imports. */
const closure = (key, seen = new Set()) => {
  const chunk = manifest[key];
  if (!chunk || seen.has(chunk.file)) return seen;
  seen.add(chunk.file);
  for (const css of chunk.css ?? []) seen.add(css);
  for (const dep of chunk.imports ?? []) closure(dep, seen);
  return seen;
};

const sizes = new Map();
const sizeOf = async (file) => {
  if (!sizes.has(file)) {
    const bytes = await readFile(`${dist}${file}`);
    sizes.set(file, { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
  }
  return sizes.get(file);
};
const total = async (files) => {
  let raw = 0;
  let gzip = 0;
  for (const file of files) {
    const size = await sizeOf(file);
    raw += size.raw;
    gzip += size.gzip;
  }
  return { files: files.length, raw, gzip };
};

const first = closure('index.html');
const rows = [['first page (shell, SDK, Yjs)', await total([...first])]];
for (const key of manifest['index.html'].dynamicImports ?? []) {
  const added = [...closure(key)].filter((file) => !first.has(file));
  const { name } = manifest[key];
  const tab = ['editor', 'analytics', 'sensors', 'permissions'].includes(name);
  rows.push([`+ ${name} ${tab ? 'tab' : '(loaded only when used)'}`, await total(added)]);
}
rows.push(['hocuspocus.html (alone)', await total([...closure('hocuspocus.html')])]);

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(Object.fromEntries(rows), null, 2));
} else {
  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
  console.log('| what | files | raw | gzip |\n|---|---|---|---|');
  for (const [what, t] of rows)
    console.log(`| ${what} | ${t.files} | ${kb(t.raw)} | ${kb(t.gzip)} |`);
}
