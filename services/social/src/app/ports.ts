import type { Post, Profile } from '../domain/model.js';

export interface ProfileStore {
  /** Creates the profile if absent; a no-op otherwise. */
  ensure(profile: { userId: string; handle: string }): Promise<void>;
  byHandle(handle: string): Promise<Profile | undefined>;
}

export interface FollowStore {
  /** Resolves true when the follow is new, false when it already existed. */
  follow(followerId: string, followeeId: string): Promise<boolean>;
  /** Resolves true when a follow was removed. */
  unfollow(followerId: string, followeeId: string): Promise<boolean>;
}

export type DeleteOutcome = 'deleted' | 'not_found' | 'not_author';

export interface PostStore {
  create(post: { id: string; authorId: string; text: string }): Promise<Post>;
  byId(id: string): Promise<Post | undefined>;
  delete(id: string, requesterId: string): Promise<DeleteOutcome>;
}

/** The accounts social has not seen yet, as identity knows them. */
export interface AccountDirectory {
  byHandle(handle: string): Promise<{ id: string; handle: string } | undefined>;
}
