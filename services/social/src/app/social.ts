import type { Actor, Post, Profile } from '../domain/model.js';
import type { AccountDirectory, DeleteOutcome, FollowStore, PostStore, ProfileStore } from './ports.js';

export class SelfFollowError extends Error {
  constructor() {
    super('you cannot follow yourself');
    this.name = 'SelfFollowError';
  }
}

export interface SocialDeps {
  readonly profiles: ProfileStore;
  readonly follows: FollowStore;
  readonly posts: PostStore;
  readonly directory: AccountDirectory;
  readonly newId: () => string;
}

/**
 * The social use cases, free of HTTP and SQL.
 *
 * Profiles are provisioned on demand: the acting user's from their verified token, anyone
 * else's from identity the first time social meets their handle. (When the bus lands,
 * identity's `identity.account.created` event will create them ahead of time instead.)
 */
export function socialApp(deps: SocialDeps) {
  async function profileOf(handle: string): Promise<Profile | undefined> {
    const known = await deps.profiles.byHandle(handle);
    if (known !== undefined) return known;
    const account = await deps.directory.byHandle(handle);
    if (account === undefined) return undefined;
    await deps.profiles.ensure({ userId: account.id, handle: account.handle });
    return deps.profiles.byHandle(handle);
  }

  return {
    profile: profileOf,

    /** Idempotent: following twice leaves one follow. Resolves undefined for an unknown handle. */
    async follow(actor: Actor, handle: string): Promise<{ created: boolean } | undefined> {
      if (handle === actor.handle) throw new SelfFollowError();
      await deps.profiles.ensure(actor);
      const target = await profileOf(handle);
      if (target === undefined) return undefined;
      return { created: await deps.follows.follow(actor.userId, target.userId) };
    },

    /** Idempotent: unfollowing someone not followed is not an error. */
    async unfollow(actor: Actor, handle: string): Promise<{ removed: boolean } | undefined> {
      if (handle === actor.handle) throw new SelfFollowError();
      await deps.profiles.ensure(actor);
      const target = await profileOf(handle);
      if (target === undefined) return undefined;
      return { removed: await deps.follows.unfollow(actor.userId, target.userId) };
    },

    async createPost(actor: Actor, text: string): Promise<Post> {
      await deps.profiles.ensure(actor);
      return deps.posts.create({ id: deps.newId(), authorId: actor.userId, text });
    },

    post: (id: string): Promise<Post | undefined> => deps.posts.byId(id),

    deletePost: (actor: Actor, id: string): Promise<DeleteOutcome> => deps.posts.delete(id, actor.userId),
  };
}

export type SocialApp = ReturnType<typeof socialApp>;
