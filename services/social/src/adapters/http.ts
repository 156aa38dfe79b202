import { badRequest, HINT, HttpError, notFound, type HttpApp } from '@agora/runtime';
import { Type, type Static } from '@sinclair/typebox';
import { SelfFollowError, type SocialApp } from '../app/social.js';
import { HANDLE_PATTERN, ID_PATTERN, POST_MAX, type Actor, type Post, type Profile } from '../domain/model.js';

/** Codes this service answers with, besides the service kit's. */
export const SocialErrorCodes = {
  SELF_FOLLOW: 'self_follow',
  NOT_AUTHOR: 'not_author',
} as const;

const Error = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }) });
const HandleParams = Type.Object({
  handle: Type.String({ pattern: HANDLE_PATTERN, [HINT]: 'handle must be 3 to 30 characters, each a-z, 0-9 or _' }),
});
const IdParams = Type.Object({ id: Type.String({ pattern: ID_PATTERN, [HINT]: 'a post id is a decimal number of up to 19 digits' }) });

const UserView = Type.Object({
  id: Type.String(),
  handle: Type.String(),
  displayName: Type.Union([Type.String(), Type.Null()]),
  bio: Type.Union([Type.String(), Type.Null()]),
  followers: Type.Integer(),
  following: Type.Integer(),
  posts: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
});
const PostView = Type.Object({
  id: Type.String(),
  author: Type.Object({ id: Type.String(), handle: Type.String() }),
  text: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});
const CreatePostBody = Type.Object(
  {
    text: Type.String({
      minLength: 1,
      maxLength: POST_MAX,
      pattern: '\\S',
      [HINT]: `text must be 1 to ${POST_MAX} characters and not only spaces`,
    }),
  },
  { additionalProperties: false },
);

const userView = (p: Profile): Static<typeof UserView> => ({
  id: p.userId,
  handle: p.handle,
  displayName: p.displayName,
  bio: p.bio,
  followers: p.followers,
  following: p.following,
  posts: p.posts,
  createdAt: p.createdAt.toISOString(),
});
const postView = (p: Post): Static<typeof PostView> => ({ id: p.id, author: p.author, text: p.text, createdAt: p.createdAt.toISOString() });

const actorOf = (request: { principal?: { userId: string; handle: string } }): Actor => ({
  userId: request.principal!.userId,
  handle: request.principal!.handle,
});

const secured = { security: [{ bearer: [] }] };

export function socialRoutes(app: HttpApp, social: SocialApp): void {
  app.get(
    '/v1/users/:handle',
    { schema: { tags: ['users'], summary: 'A user profile with its counters', params: HandleParams, response: { 200: Type.Object({ user: UserView }), 400: Error, 404: Error } } },
    async (request) => {
      const profile = await social.profile(request.params.handle);
      if (profile === undefined) throw notFound(`the user @${request.params.handle}`);
      return { user: userView(profile) };
    },
  );

  const followSchema = (summary: string) => ({
    tags: ['users'],
    summary,
    ...secured,
    params: HandleParams,
    response: { 200: Type.Object({ following: Type.Boolean(), changed: Type.Boolean() }), 400: Error, 401: Error, 404: Error },
  });

  app.post('/v1/users/:handle/follow', { preHandler: app.authenticate, schema: followSchema('Follow a user (idempotent)') }, async (request) => {
    const outcome = await guardSelf(() => social.follow(actorOf(request), request.params.handle));
    if (outcome === undefined) throw notFound(`the user @${request.params.handle}`);
    return { following: true, changed: outcome.created };
  });

  app.delete('/v1/users/:handle/follow', { preHandler: app.authenticate, schema: followSchema('Unfollow a user (idempotent)') }, async (request) => {
    const outcome = await guardSelf(() => social.unfollow(actorOf(request), request.params.handle));
    if (outcome === undefined) throw notFound(`the user @${request.params.handle}`);
    return { following: false, changed: outcome.removed };
  });

  app.post(
    '/v1/posts',
    {
      preHandler: app.authenticate,
      schema: { tags: ['posts'], summary: 'Publish a post', ...secured, body: CreatePostBody, response: { 201: Type.Object({ post: PostView }), 400: Error, 401: Error } },
    },
    async (request, reply) => reply.status(201).send({ post: postView(await social.createPost(actorOf(request), request.body.text)) }),
  );

  app.get(
    '/v1/posts/:id',
    { schema: { tags: ['posts'], summary: 'A post', params: IdParams, response: { 200: Type.Object({ post: PostView }), 400: Error, 404: Error } } },
    async (request) => {
      const post = await social.post(request.params.id);
      if (post === undefined) throw notFound(`the post ${request.params.id}`);
      return { post: postView(post) };
    },
  );

  app.delete(
    '/v1/posts/:id',
    {
      preHandler: app.authenticate,
      schema: { tags: ['posts'], summary: 'Delete your post', ...secured, params: IdParams, response: { 204: Type.Null(), 400: Error, 401: Error, 403: Error, 404: Error } },
    },
    async (request, reply) => {
      const outcome = await social.deletePost(actorOf(request), request.params.id);
      if (outcome === 'not_found') throw notFound(`the post ${request.params.id}`);
      if (outcome === 'not_author') throw new HttpError(403, SocialErrorCodes.NOT_AUTHOR, 'only the author can delete a post');
      return reply.status(204).send(null);
    },
  );
}

async function guardSelf<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (err instanceof SelfFollowError) throw badRequest(SocialErrorCodes.SELF_FOLLOW, err.message);
    throw err;
  }
}
