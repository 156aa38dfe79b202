export { createIdentityService, SERVICE, type IdentityOptions } from './main.js';
export { IdentityErrorCodes } from './adapters/http.js';
