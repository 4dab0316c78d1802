// Build the live editor bundle: assets/editor/main.js → static/dist/editor-<hash>.js,
// and static/dist/manifest.json mapping "editor.js" to the hashed file (read by
// app/assets.py). Run by `npm run build` (scripts/setup does it).
import { build } from 'esbuild'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const outdir = path.join(root, 'static', 'dist')
const entries = { editor: path.join(root, 'assets', 'editor', 'main.js') }

await mkdir(outdir, { recursive: true })
const result = await build({
  entryPoints: entries,
  outdir,
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  target: ['es2020'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning'
})

const manifest = {}
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  if (!info.entryPoint || !file.endsWith('.js')) continue
  const name = Object.keys(entries).find((key) => path.resolve(root, info.entryPoint) === entries[key])
  if (name) manifest[`${name}.js`] = path.basename(file)
}
// Drop bundles of earlier builds (hashed names no longer in the manifest).
const keep = new Set(Object.values(manifest).flatMap((f) => [f, `${f}.map`, `${f}.LEGAL.txt`]))
for (const file of await readdir(outdir)) {
  if (file !== 'manifest.json' && !keep.has(file)) await rm(path.join(outdir, file))
}
await writeFile(path.join(outdir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
console.log(`editor bundle: ${Object.values(manifest).join(', ')}`)
