import { describe, expect, it } from 'vitest';
import { SelfFollowError, socialApp } from '../src/app/social.js';
import type { AccountDirectory, FollowStore, PostStore, ProfileStore } from '../src/app/ports.js';
import type { Post, Profile } from '../src/domain/model.js';

// The use cases on in-memory ports.
function memory() {
  const profiles = new Map<string, Profile>();
  const follows = new Set<string>();
  const posts = new Map<string, Post>();
  const directoryCalls: string[] = [];
  const accounts = new Map([['grace', { id: '2', handle: 'grace' }]]);
  const profileStore: ProfileStore = {
    async ensure({ userId, handle }) {
      if (![...profiles.values()].some((p) => p.userId === userId)) {
        profiles.set(handle, { userId, handle, displayName: null, bio: null, followers: 0, following: 0, posts: 0, createdAt: new Date() });
      }
    },
    byHandle: async (handle) => profiles.get(handle),
  };
  const followStore: FollowStore = {
    async follow(a, b) {
      const had = follows.has(`${a}>${b}`);
      follows.add(`${a}>${b}`);
      return !had;
    },
    unfollow: async (a, b) => follows.delete(`${a}>${b}`),
  };
  const postStore: PostStore = {
    async create({ id, authorId, text }) {
      const author = [...profiles.values()].find((p) => p.userId === authorId)!;
      const post = { id, author: { id: authorId, handle: author.handle }, text, createdAt: new Date() };
      posts.set(id, post);
      return post;
    },
    byId: async (id) => posts.get(id),
    async delete(id, requesterId) {
      const post = posts.get(id);
      if (post === undefined) return 'not_found';
      if (post.author.id !== requesterId) return 'not_author';
      posts.delete(id);
      return 'deleted';
    },
  };
  const directory: AccountDirectory = {
    async byHandle(handle) {
      directoryCalls.push(handle);
      return accounts.get(handle);
    },
  };
  let next = 1000;
  const app = socialApp({ profiles: profileStore, follows: followStore, posts: postStore, directory, newId: () => String(next++) });
  return { app, directoryCalls, follows };
}

const ada = { userId: '1', handle: 'ada' };

describe('social', () => {
  it('provisions an unseen profile from identity once, then serves it from its own store', async () => {
    const { app, directoryCalls } = memory();
    expect((await app.profile('grace'))?.userId).toBe('2');
    expect((await app.profile('grace'))?.userId).toBe('2');
    expect(directoryCalls).toEqual(['grace']);
    expect(await app.profile('nobody')).toBeUndefined();
  });

  it('follows idempotently and refuses to follow oneself', async () => {
    const { app } = memory();
    expect(await app.follow(ada, 'grace')).toEqual({ created: true });
    expect(await app.follow(ada, 'grace')).toEqual({ created: false });
    expect(await app.unfollow(ada, 'grace')).toEqual({ removed: true });
    expect(await app.unfollow(ada, 'grace')).toEqual({ removed: false });
    await expect(app.follow(ada, 'ada')).rejects.toBeInstanceOf(SelfFollowError);
    expect(await app.follow(ada, 'nobody')).toBeUndefined();
  });

  it('lets only the author delete a post', async () => {
    const { app } = memory();
    const post = await app.createPost(ada, 'hello');
    expect(await app.deletePost({ userId: '2', handle: 'grace' }, post.id)).toBe('not_author');
    expect(await app.deletePost(ada, post.id)).toBe('deleted');
    expect(await app.deletePost(ada, post.id)).toBe('not_found');
  });
});
