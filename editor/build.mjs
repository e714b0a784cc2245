// Bundles the browser code into ../web/static/dist/ (gitignored; `make editor` runs this).
// Each entry point becomes dist/<name>.js; add new bundles (e.g. the BPMN modeler) to ENTRIES.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../web/static/dist");

/** name → source file, relative to this folder. */
const ENTRIES = [
  { name: "crm", source: "src/crm.js" },
];

const watch = process.argv.includes("--watch");

await build({
  entryPoints: Object.fromEntries(ENTRIES.map((e) => [e.name, path.resolve(here, e.source)])),
  outdir,
  bundle: true,
  format: "iife",
  target: ["es2020"],
  minify: !watch,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});
console.log(`built ${ENTRIES.map((e) => e.name).join(", ")} into ${path.relative(process.cwd(), outdir)}`);
