// `npm run bench`: runs every bench/<name>/index.ts (or only those named on the command line)
// and prints each comparison with its ratios. Results are ratios measured in one run on one
// machine; absolute numbers vary between machines, ratios much less.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { report, type Result } from './harness.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const suites = readdirSync(here).filter((d) => statSync(`${here}${d}`).isDirectory() && (wanted.length === 0 || wanted.includes(d)));
if (suites.length === 0) {
  console.error(`no benchmark named ${wanted.join(', ')}; have: ${readdirSync(here).filter((d) => statSync(`${here}${d}`).isDirectory()).join(', ')}`);
  process.exit(2);
}
let missed = 0;
for (const suite of suites) {
  const { run } = (await import(`./${suite}/index.ts`)) as { run: () => Promise<Result[]> };
  console.log(`# ${suite}`);
  const results = await run();
  console.log(report(results));
  missed += results.flatMap((r) => r.rows).filter((row) => row.met === false).length;
}
console.log(missed === 0 ? '\nevery target met' : `\n${missed} target(s) missed`);
