export { createSocialService, SERVICE, type SocialOptions } from './main.js';
export { SocialErrorCodes } from './adapters/http.js';
