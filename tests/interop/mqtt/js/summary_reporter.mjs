// node:test reporter that prints the suite's closing line,
// "N passed, N failed, N skipped", alone on the last line. Used next to
// the spec reporter by tests/interop/mqtt/test_mqttjs.py. Suites (describe)
// are not counted, only tests; todo tests count as skipped.
export default async function* summary(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const data = event.data;
    if (data.details && data.details.type === 'suite') continue;
    if (data.skip !== undefined || data.todo !== undefined) skipped++;
    else if (event.type === 'test:pass') passed++;
    else failed++;
  }
  yield `${passed} passed, ${failed} failed, ${skipped} skipped\n`;
}
