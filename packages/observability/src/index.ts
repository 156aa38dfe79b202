export { createLogger, type Logger, type LoggerOptions } from './logger.js';
export {
  acceptRequestId,
  currentContext,
  newRequestContext,
  propagationHeaders,
  runWithContext,
  type RequestContext,
} from './context.js';
export { counter, createMetrics, gauge, histogram, httpMetrics, poolMetrics, type HttpLabel, type HttpMetrics, type Metrics } from './metrics.js';
export { runHealthChecks, type HealthCheck, type HealthReport } from './health.js';
