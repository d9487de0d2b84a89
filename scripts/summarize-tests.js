// Adds up the jest JSON reports of every project into one closing line.
const fs = require('node:fs');
const path = require('node:path');

const dir = process.argv[2] ?? 'tmp/jest';
let passed = 0, failed = 0, skipped = 0;
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
for (const file of files) {
  const report = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
  skipped += report.numPendingTests + report.numTodoTests;
  console.log(`${path.basename(file, '.json')}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`);
}
console.log(`camstream: ${passed} passed, ${failed} failed, ${skipped} skipped`);
