import { MetricsServer, PROMETHEUS_CONTENT_TYPE, PrometheusText } from './index';

describe('MetricsServer', () => {
  it('answers GET /metrics with a fresh rendering in the text format, and 404 elsewhere', async () => {
    let scrapes = 0;
    const server = await MetricsServer.listen({ host: '127.0.0.1', port: 0, render: () => new PrometheusText().counter('scrapes_total', 'Scrapes.', ++scrapes).toString() });
    try {
      const first = await fetch(server.url);
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
      expect(await first.text()).toContain('scrapes_total 1\n');
      expect(await (await fetch(server.url)).text()).toContain('scrapes_total 2\n');
      const elsewhere = await fetch(`http://127.0.0.1:${server.port}/`);
      expect(elsewhere.status).toBe(404);
      expect(await elsewhere.text()).toBe('not found: / (metrics are at /metrics)\n');
    } finally {
      await server.close();
    }
  });

  it('says which address it could not listen on', async () => {
    const first = await MetricsServer.listen({ host: '127.0.0.1', port: 0, render: () => '' });
    try {
      await expect(MetricsServer.listen({ host: '127.0.0.1', port: first.port, render: () => '' })).rejects.toThrow(`cannot serve metrics on 127.0.0.1:${first.port}: the port is already in use`);
    } finally {
      await first.close();
    }
  });
});
