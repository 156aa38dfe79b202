import type { RouteSpec } from '@agora/gateway';

/** The public API of Agora: every route the gateway serves, and who owns it. */
export const agoraRoutes: readonly RouteSpec[] = [
  { methods: ['POST'], path: '/v1/auth/signup', service: 'identity', auth: 'none' },
  { methods: ['POST'], path: '/v1/auth/login', service: 'identity', auth: 'none' },
  { methods: ['GET'], path: '/v1/me', service: 'identity', auth: 'required' },
  { methods: ['GET'], path: '/v1/users/:handle', service: 'social', auth: 'optional' },
  { methods: ['POST', 'DELETE'], path: '/v1/users/:handle/follow', service: 'social', auth: 'required' },
  { methods: ['POST'], path: '/v1/posts', service: 'social', auth: 'required' },
  { methods: ['GET'], path: '/v1/posts/:id', service: 'social', auth: 'optional' },
  { methods: ['DELETE'], path: '/v1/posts/:id', service: 'social', auth: 'required' },
];
