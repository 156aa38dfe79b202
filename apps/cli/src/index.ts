export { AgoraConfigEnv, AgoraConfigSchema, readAgoraConfig, type AgoraConfig } from './config.js';
export { main } from './main.js';
export { agoraRoutes } from './routes.js';
export { buildEmbeddedSystem, type RunningSystem } from './system.js';
