// Bundles the browser code into ../web/static/dist/ (gitignored; `make editor` runs this).
//
// Two builds:
// - the pages' progressive enhancement (htmx, kanban): one classic script, dist/crm.js;
// - the process editor: ES modules with code splitting under dist/editor/ — modeler.js (the
//   editor page), viewer.js (instance viewer, heatmap, version comparison); dmn-js is split
//   off and loaded only when a decision table is opened. CSS imported from JS lands beside
//   each entry (dist/editor/modeler.css …); fonts under dist/editor/assets/.
import { build } from "esbuild";
import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../web/static/dist");
const watch = process.argv.includes("--watch");

/** name → source file, relative to this folder. */
const PAGE_ENTRIES = [
  { name: "crm", source: "src/crm.js" },
  { name: "charts", source: "src/charts.js" }, // Chart.js, for the activity index only
];
const EDITOR_ENTRIES = [
  { name: "editor/modeler", source: "src/editor/modeler.js" },
  { name: "editor/viewer", source: "src/editor/viewer.js" },
  { name: "editor/dmn", source: "src/editor/dmn.css" },
];

// `import lintConfig from "../.bpmnlintrc"` → the packed config bpmn-js-bpmnlint wants, compiled
// by bpmnlint's own compiler (the rollup/webpack plugins do the same; esbuild has none).
const compileConfig = createRequire(import.meta.url)("bpmnlint/lib/support/compile-config");
const bpmnlintrc = {
  name: "bpmnlintrc",
  setup(b) {
    b.onLoad({ filter: /\.bpmnlintrc$/ }, async ({ path: p }) => ({
      contents: await compileConfig(JSON.parse(await readFile(p, "utf8"))),
      loader: "js",
      resolveDir: path.dirname(p),
    }));
  },
};

const entries = (list) => Object.fromEntries(list.map((e) => [e.name, path.resolve(here, e.source)]));

await build({
  entryPoints: entries(PAGE_ENTRIES),
  outdir,
  bundle: true,
  format: "iife",
  target: ["es2020"],
  minify: !watch,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});

await build({
  entryPoints: entries(EDITOR_ENTRIES),
  outdir,
  bundle: true,
  format: "esm",
  splitting: true,
  target: ["es2020"],
  minify: !watch,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
  jsx: "automatic",
  jsxImportSource: "@bpmn-io/properties-panel/preact", // the panel's vendored preact (see notes)
  loader: { ".bpmn": "text", ".dmn": "text", ".eot": "file", ".woff": "file", ".woff2": "file",
            ".ttf": "file", ".svg": "file" },
  chunkNames: "editor/chunks/[name]-[hash]",
  assetNames: "editor/assets/[name]-[hash]",
  plugins: [bpmnlintrc],
});

const names = [...PAGE_ENTRIES, ...EDITOR_ENTRIES].map((e) => e.name).join(", ");
console.log(`built ${names} into ${path.relative(process.cwd(), outdir)}`);
