// Bundles src/ into dist/: content-hashed assets and an index.html that names them.
// Runs at image build time (npm ci && npm run build); nothing is fetched when the page loads.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import * as esbuild from "esbuild";

// Where the gateway serves this function; assets are named absolutely so that
// /function/console and /function/console/ both load them.
const PUBLIC_PATH = process.env.CONSOLE_PUBLIC_PATH || "/function/console/";
const OUT = "dist";

await rm(OUT, { recursive: true, force: true });
const result = await esbuild.build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  outdir: path.join(OUT, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  legalComments: "eof",
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
const script = outputs.find((name) => name.endsWith(".js"));
const style = outputs.find((name) => name.endsWith(".css"));
if (!script || !style) throw new Error(`unexpected build outputs: ${outputs.join(", ")}`);

const page = (await readFile("src/index.html", "utf8"))
  .replace("{{style}}", PUBLIC_PATH + "assets/" + style)
  .replace("{{script}}", PUBLIC_PATH + "assets/" + script);
await mkdir(OUT, { recursive: true });
await writeFile(path.join(OUT, "index.html"), page);
console.log(`console bundle: ${outputs.join(", ")}`);
