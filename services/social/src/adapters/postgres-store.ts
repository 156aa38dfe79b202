import { isForeignKeyViolation, withTransaction, type Queryable } from '@agora/db';
import type pg from 'pg';
import type { Post, Profile } from '../domain/model.js';
import type { FollowStore, PostStore, ProfileStore } from '../app/ports.js';
import { FollowAdded, FollowRemoved, PostCreated, PostDeleted } from '../domain/events.js';
import type { EventOutbox } from './outbox.js';

interface ProfileRow {
  user_id: string;
  handle: string;
  display_name: string | null;
  bio: string | null;
  followers_count: string;
  following_count: string;
  posts_count: string;
  created_at: Date;
}

interface PostRow {
  id: string;
  author_id: string;
  handle: string;
  text: string;
  created_at: Date;
}

const toProfile = (r: ProfileRow): Profile => ({
  userId: r.user_id,
  handle: r.handle,
  displayName: r.display_name,
  bio: r.bio,
  followers: Number(r.followers_count),
  following: Number(r.following_count),
  posts: Number(r.posts_count),
  createdAt: r.created_at,
});

const toPost = (r: PostRow): Post => ({ id: r.id, author: { id: r.author_id, handle: r.handle }, text: r.text, createdAt: r.created_at });

const isId = (id: string) => /^\d{1,19}$/.test(id);

export function postgresProfiles(db: Queryable): ProfileStore {
  return {
    async ensure({ userId, handle }) {
      await db.query('INSERT INTO profiles (user_id, handle) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING', [userId, handle]);
    },
    async byHandle(handle) {
      const { rows } = await db.query<ProfileRow>(
        `SELECT user_id::text, handle, display_name, bio, followers_count, following_count, posts_count, created_at
           FROM profiles WHERE handle = $1`,
        [handle],
      );
      return rows[0] === undefined ? undefined : toProfile(rows[0]);
    },
  };
}

/**
 * Locks the two profiles a follow touches in one fixed order (by id), whichever of them
 * follows the other, so that A following B while B follows A cannot deadlock.
 */
async function lockPair(tx: pg.PoolClient, a: string, b: string): Promise<void> {
  await tx.query('SELECT 1 FROM profiles WHERE user_id = ANY($1::bigint[]) ORDER BY user_id FOR UPDATE', [[a, b]]);
}

export function postgresFollows(pool: pg.Pool, outbox: EventOutbox): FollowStore {
  return {
    follow: (followerId, followeeId) =>
      withTransaction(pool, async (tx) => {
        await lockPair(tx, followerId, followeeId);
        // The primary key makes a second follow a no-op; counters move only when a row was added.
        const inserted = await tx.query(
          'INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
          [followerId, followeeId],
        );
        if (inserted.rowCount === 0) return false;
        await tx.query('UPDATE profiles SET following_count = following_count + 1 WHERE user_id = $1', [followerId]);
        await tx.query('UPDATE profiles SET followers_count = followers_count + 1 WHERE user_id = $1', [followeeId]);
        await outbox.add(tx, FollowAdded, { followerId, followeeId });
        return true;
      }),
    unfollow: (followerId, followeeId) =>
      withTransaction(pool, async (tx) => {
        await lockPair(tx, followerId, followeeId);
        const removed = await tx.query('DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2', [followerId, followeeId]);
        if (removed.rowCount === 0) return false;
        await tx.query('UPDATE profiles SET following_count = following_count - 1 WHERE user_id = $1', [followerId]);
        await tx.query('UPDATE profiles SET followers_count = followers_count - 1 WHERE user_id = $1', [followeeId]);
        await outbox.add(tx, FollowRemoved, { followerId, followeeId });
        return true;
      }),
  };
}

const POST_SELECT = `SELECT p.id::text, p.author_id::text, a.handle, p.text, p.created_at
                       FROM posts p JOIN profiles a ON a.user_id = p.author_id`;

export function postgresPosts(pool: pg.Pool, outbox: EventOutbox): PostStore {
  return {
    create: ({ id, authorId, text }) =>
      withTransaction(pool, async (tx) => {
        try {
          await tx.query('INSERT INTO posts (id, author_id, text) VALUES ($1, $2, $3)', [id, authorId, text]);
        } catch (err) {
          if (isForeignKeyViolation(err)) throw new Error(`no profile ${authorId} to post as`, { cause: err });
          throw err;
        }
        await tx.query('UPDATE profiles SET posts_count = posts_count + 1 WHERE user_id = $1', [authorId]);
        const { rows } = await tx.query<PostRow>(`${POST_SELECT} WHERE p.id = $1`, [id]);
        const post = toPost(rows[0]!);
        await outbox.add(tx, PostCreated, {
          postId: post.id,
          authorId: post.author.id,
          authorHandle: post.author.handle,
          text: post.text,
          createdAt: post.createdAt.toISOString(),
        });
        return post;
      }),
    async byId(id) {
      if (!isId(id)) return undefined;
      const { rows } = await pool.query<PostRow>(`${POST_SELECT} WHERE p.id = $1`, [id]);
      return rows[0] === undefined ? undefined : toPost(rows[0]);
    },
    delete: (id, requesterId) =>
      isId(id)
        ? withTransaction(pool, async (tx) => {
            // Lock the post so a concurrent delete of the same post cannot count twice.
            const { rows } = await tx.query<{ author_id: string }>('SELECT author_id::text FROM posts WHERE id = $1 FOR UPDATE', [id]);
            const post = rows[0];
            if (post === undefined) return 'not_found' as const;
            if (post.author_id !== requesterId) return 'not_author' as const;
            await tx.query('DELETE FROM posts WHERE id = $1', [id]);
            await tx.query('UPDATE profiles SET posts_count = posts_count - 1 WHERE user_id = $1', [requesterId]);
            await outbox.add(tx, PostDeleted, { postId: id, authorId: requesterId });
            return 'deleted' as const;
          })
        : Promise.resolve('not_found' as const),
  };
}
