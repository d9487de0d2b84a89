import { freePort, startProcess } from '@camstream/testkit';

/**
 * What loopback TCP carries on this machine right now, in bytes per second: iperf3 (Debian's
 * `iperf3` package), one stream, client to server over 127.0.0.1, `seconds` long. Raw frames
 * cannot go faster than this; the bench reports raw fps as a fraction of it, measured in the
 * same run so that the machine's state is the same.
 */
export async function loopbackLimit(seconds = 3, iperf3 = 'iperf3'): Promise<number> {
  const port = await freePort();
  const server = startProcess(iperf3, ['-s', '-1', '--forceflush', '-p', String(port)], { name: 'iperf3-server' });
  try {
    // --forceflush: iperf3 buffers its output when it is not a terminal.
    await server.waitForLine(/Server listening/, { timeoutMs: 10_000 });
    const client = startProcess(iperf3, ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], { name: 'iperf3-client' });
    const status = await client.waitForExit((seconds + 20) * 1000);
    const text = client.stdoutLines.join('\n');
    if (status.code !== 0) throw new Error(`iperf3 failed (${JSON.stringify(status)}): ${client.outputTail()}`);
    const report = JSON.parse(text) as { end?: { sum_received?: { bits_per_second?: number } } };
    const bits = report.end?.sum_received?.bits_per_second;
    if (!(typeof bits === 'number' && bits > 0)) throw new Error(`iperf3 reported no received rate: ${text.slice(0, 500)}`);
    return bits / 8;
  } finally {
    await server.kill();
  }
}
