import type { ServiceClient } from '@agora/runtime';
import type { AccountDirectory } from '../app/ports.js';

/** Resolves handles through identity's internal API. */
export function identityDirectory(identity: ServiceClient): AccountDirectory {
  return {
    async byHandle(handle) {
      const res = await identity.get<{ account?: { id: string; handle: string } }>(`/internal/v1/accounts/by-handle/${encodeURIComponent(handle)}`);
      if (res.status === 404 || res.body?.account === undefined) return undefined;
      return { id: res.body.account.id, handle: res.body.account.handle };
    },
  };
}
