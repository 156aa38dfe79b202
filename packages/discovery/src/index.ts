export { createMemoryRegistry, type Instance, type Registry, type RegistryChange } from './registry.js';
