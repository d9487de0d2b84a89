/**
 * @camstream/metrics: figures in the Prometheus text format (version 0.0.4) for the apps'
 * /metrics: counters, gauges and fixed-bucket histograms with escaped labels, the usual process
 * figures, and a small HTTP server for an app that has no other. No dependencies.
 */
export { PrometheusText, PROMETHEUS_CONTENT_TYPE, formatValue } from './prometheus-text';
export type { Labels, MetricType } from './prometheus-text';
export { Histogram } from './histogram';
export type { HistogramSnapshot } from './histogram';
export { addProcessMetrics } from './process-metrics';
export { MetricsServer } from './metrics-server';
export type { MetricsServerOptions } from './metrics-server';
