export { ConfigError, loadConfig, type ConfigIssue, type ConfigSources, type ConfigSpec } from './config.js';
export { badRequest, conflict, errorBody, forbidden, HttpError, KitErrorCodes, notFound, type ErrorBody } from './errors.js';
export { deferred, Host, stopOnSignals, StoppedWhileStartingError, type Component, type HostOptions, type SignalOptions } from './lifecycle.js';
export {
  createHttpService,
  PortInUseError,
  toErrorAnswer,
  type HttpApp,
  type HttpService,
  type HttpServiceOptions,
} from './http/server.js';
export { describeValidation, HINT, type ValidationIssue } from './http/validation.js';
export { registeredService, type RegisteredServiceOptions } from './service.js';
export { createServiceClient, type ServiceClient, type ServiceClientOptions, UpstreamError } from './client.js';
