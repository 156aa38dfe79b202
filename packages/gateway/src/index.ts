export { createGateway, type GatewayOptions } from './gateway.js';
export { GatewayErrorCodes } from './proxy.js';
export { toOpenApiPath, type HttpMethod, type RouteSpec } from './routes.js';
export { mergedOpenApi } from './docs.js';
export { CallerGoneError, isTransportFailure, Upstreams, type CircuitView, type UpstreamPolicyOptions } from './upstreams.js';
