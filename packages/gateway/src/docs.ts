import type { Registry } from '@agora/discovery';
import { request } from 'undici';
import { toOpenApiPath, type RouteSpec } from './routes.js';

type OpenApiDoc = {
  paths?: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
};

/**
 * The public API document: each service's OpenAPI, reduced to the operations the gateway
 * routes, merged into one. A service that cannot be reached is listed as missing instead of
 * failing the whole document.
 */
export async function mergedOpenApi(routes: readonly RouteSpec[], registry: Registry, info: { title: string; version: string }) {
  const services = [...new Set(routes.map((r) => r.service))];
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Record<string, unknown> = {};
  const securitySchemes: Record<string, unknown> = {};
  const missing: string[] = [];
  await Promise.all(
    services.map(async (service) => {
      const [instance] = await registry.instances(service);
      if (instance === undefined) return void missing.push(service);
      try {
        const res = await request(new URL('/openapi.json', instance.url), { headersTimeout: 2000, bodyTimeout: 2000 });
        // An error answer (a draining service's 503, a 404) is no document: the service is missing.
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new Error(`${service} answered ${res.statusCode} for /openapi.json`);
        }
        const doc = (await res.body.json()) as OpenApiDoc;
        for (const route of routes.filter((r) => r.service === service)) {
          const path = toOpenApiPath(route.path);
          for (const method of route.methods) {
            const operation = doc.paths?.[path]?.[method.toLowerCase()];
            if (operation !== undefined) (paths[path] ??= {})[method.toLowerCase()] = operation;
          }
        }
        Object.assign(schemas, doc.components?.schemas ?? {});
        Object.assign(securitySchemes, doc.components?.securitySchemes ?? {});
      } catch {
        missing.push(service);
      }
    }),
  );
  return {
    openapi: '3.1.0',
    info: { ...info, ...(missing.length > 0 ? { 'x-missing-services': missing.sort() } : {}) },
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
    components: { schemas, securitySchemes },
  };
}
