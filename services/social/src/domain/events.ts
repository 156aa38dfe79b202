import { defineMessage } from '@agora/bus';
import { Type } from '@sinclair/typebox';

// What happens in social, as other services see it: declared once here, validated when
// published and when consumed. Keyed so that the events of one author (posts) or one
// follower (follows) are handled in order.

const Id = Type.String({ pattern: '^[0-9]{1,19}$' });

export const PostCreated = defineMessage({
  type: 'social.post.created',
  version: 1,
  topic: 'social.posts',
  schema: Type.Object({ postId: Id, authorId: Id, authorHandle: Type.String(), text: Type.String(), createdAt: Type.String({ format: 'date-time' }) }),
  key: (d) => d.authorId,
});

export const PostDeleted = defineMessage({
  type: 'social.post.deleted',
  version: 1,
  topic: 'social.posts',
  schema: Type.Object({ postId: Id, authorId: Id }),
  key: (d) => d.authorId,
});

export const FollowAdded = defineMessage({
  type: 'social.follow.added',
  version: 1,
  topic: 'social.follows',
  schema: Type.Object({ followerId: Id, followeeId: Id }),
  key: (d) => d.followerId,
});

export const FollowRemoved = defineMessage({
  type: 'social.follow.removed',
  version: 1,
  topic: 'social.follows',
  schema: Type.Object({ followerId: Id, followeeId: Id }),
  key: (d) => d.followerId,
});

export const socialEvents = [PostCreated, PostDeleted, FollowAdded, FollowRemoved];
