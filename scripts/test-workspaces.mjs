// Runs every workspace's test suite and, when any test failed, repeats the
// failing tests with their errors at the very end. The suites print tens of
// thousands of TAP lines and a CI log is often read from its tail: without
// this a server failure sits above the SDK's and the browser's output.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const FAILURE = /^(\s*)not ok \d+ - (?!.*# (?:TODO|SKIP)\b)/;
/** Lines kept of one failure's diagnostics (name, error, stack). */
const MAX_LINES = 40;

const failures = [];
let open; // the failure whose diagnostics are being read: { indent, lines }

const watch = (stream, out) => {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    out.write(`${line}\n`);
    const failed = FAILURE.exec(line);
    if (failed) {
      open = { indent: failed[1].length, lines: [line] };
      failures.push(open.lines);
      return;
    }
    if (open === undefined) return;
    if (open.lines.length < MAX_LINES) open.lines.push(line);
    // TAP closes a test's YAML block with "..." two spaces deeper than its line.
    if (line.trim() === '...' && line.indexOf('...') === open.indent + 2) open = undefined;
  });
};

// Another command may be given (to try this script on a suite of its own).
const [command, ...args] =
  process.argv.length > 2
    ? process.argv.slice(2)
    : ['npm', 'run', 'test', '--workspaces', '--if-present'];
const child = spawn(command, args, {
  stdio: ['ignore', 'pipe', 'pipe'],
});
watch(child.stdout, process.stdout);
watch(child.stderr, process.stderr);
child.on('close', (code, signal) => {
  if (failures.length > 0) {
    console.log(`\nFailing tests (${failures.length}), repeated from above:`);
    for (const lines of failures) console.log(lines.join('\n'));
  }
  process.exit(code ?? (signal ? 1 : 0));
});
