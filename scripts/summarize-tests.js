// Adds up the jest JSON reports of every project into one closing line, after naming each failed
// test with the start of its message: CI keeps only the end of the log, and a failure far above
// it would otherwise be lost.
const fs = require('node:fs');
const path = require('node:path');

const dir = process.argv[2] ?? 'tmp/jest';
const MESSAGE_LINES = 12;
let passed = 0, failed = 0, skipped = 0;
const failures = [];
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
for (const file of files) {
  const report = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
  skipped += report.numPendingTests + report.numTodoTests;
  console.log(`${path.basename(file, '.json')}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`);
  for (const suite of report.testResults ?? []) {
    const where = path.relative(process.cwd(), suite.name);
    const failedTests = (suite.assertionResults ?? []).filter((test) => test.status === 'failed');
    for (const test of failedTests) failures.push({ where, name: test.fullName, message: (test.failureMessages ?? []).join('\n') });
    // A suite that failed outside any test (a hook, a syntax error) has only the suite's message.
    if (failedTests.length === 0 && suite.status === 'failed') failures.push({ where, name: '(the file itself)', message: suite.message ?? '' });
  }
}
for (const failure of failures) {
  // Without jest's terminal colours and its own stack frames.
  const lines = failure.message
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && !/node_modules|^\s*at (new Promise|process\.|node:)/.test(line));
  console.log(`\nFAILED ${failure.where}: ${failure.name}\n  ${lines.slice(0, MESSAGE_LINES).join('\n  ')}`);
}
if (failures.length > 0) console.log('');
console.log(`camstream: ${passed} passed, ${failed} failed, ${skipped} skipped`);
