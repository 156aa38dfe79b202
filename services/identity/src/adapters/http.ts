import { conflict, HttpError, HINT, notFound, type HttpApp } from '@agora/runtime';
import { Type, type Static } from '@sinclair/typebox';
import { InvalidCredentialsError, type AccountsApp } from '../app/accounts.js';
import { DuplicateAccountError } from '../app/ports.js';
import { EMAIL_MAX, HANDLE_PATTERN, PASSWORD_MAX, PASSWORD_MIN, type Account } from '../domain/account.js';

/** Codes this service answers with, besides the service kit's. */
export const IdentityErrorCodes = {
  HANDLE_TAKEN: 'handle_taken',
  EMAIL_TAKEN: 'email_taken',
  INVALID_CREDENTIALS: 'invalid_credentials',
} as const;

const Handle = Type.String({ pattern: HANDLE_PATTERN, [HINT]: 'handle must be 3 to 30 characters, each a-z, 0-9 or _' });
const Password = Type.String({
  minLength: PASSWORD_MIN,
  maxLength: PASSWORD_MAX,
  [HINT]: `password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters long`,
});

const SignupBody = Type.Object(
  {
    handle: Handle,
    email: Type.String({ format: 'email', maxLength: EMAIL_MAX, [HINT]: 'email must be an email address, like ada@example.org' }),
    password: Password,
  },
  { additionalProperties: false },
);
const LoginBody = Type.Object(
  {
    login: Type.String({ minLength: 1, maxLength: EMAIL_MAX, [HINT]: 'login must be your handle or your email' }),
    password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX, [HINT]: 'password must not be empty' }),
  },
  { additionalProperties: false },
);

const User = Type.Object({
  id: Type.String({ description: 'Decimal 64-bit id', examples: ['7398012345678901234'] }),
  handle: Type.String(),
  email: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});
const Token = Type.String({ description: 'Bearer token (JWT, EdDSA)' });
const Error = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }) });

const userView = (a: Account): Static<typeof User> => ({ id: a.id, handle: a.handle, email: a.email, createdAt: a.createdAt.toISOString() });

/** The public routes under /v1 and the internal ones other services call. */
export function identityRoutes(app: HttpApp, accounts: AccountsApp): void {
  app.post(
    '/v1/auth/signup',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an account and get a token',
        body: SignupBody,
        response: { 201: Type.Object({ user: User, token: Token }), 400: Error, 409: Error },
      },
    },
    async (request, reply) => {
      try {
        const { account, token } = await accounts.signup(request.body);
        return reply.status(201).send({ user: userView(account), token: token.token });
      } catch (err) {
        if (err instanceof DuplicateAccountError) {
          throw err.field === 'handle'
            ? conflict(IdentityErrorCodes.HANDLE_TAKEN, `the handle ${request.body.handle} is taken; choose another`)
            : conflict(IdentityErrorCodes.EMAIL_TAKEN, 'an account with this email exists; log in instead');
        }
        throw err;
      }
    },
  );

  app.post(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Exchange a handle or email and a password for a token',
        body: LoginBody,
        response: { 200: Type.Object({ token: Token }), 400: Error, 401: Error },
      },
    },
    async (request) => {
      try {
        return { token: (await accounts.login(request.body)).token };
      } catch (err) {
        if (err instanceof InvalidCredentialsError) throw new HttpError(401, IdentityErrorCodes.INVALID_CREDENTIALS, err.message);
        throw err;
      }
    },
  );

  app.get(
    '/v1/me',
    {
      preHandler: app.authenticate,
      schema: { tags: ['auth'], summary: 'The account of the token', security: [{ bearer: [] }], response: { 200: Type.Object({ user: User }), 401: Error } },
    },
    async (request) => {
      const account = await accounts.byId(request.principal!.userId);
      // A valid token for an account that no longer exists.
      if (account === undefined) throw notFound('the account of this token');
      return { user: userView(account) };
    },
  );

  // Internal: not routed by the gateway. Social resolves handles it has not seen yet.
  app.get(
    '/internal/v1/accounts/by-handle/:handle',
    { schema: { hide: true, params: Type.Object({ handle: Type.String({ maxLength: 64 }) }) } },
    async (request) => {
      const account = await accounts.byHandle(request.params.handle);
      if (account === undefined) throw notFound(`the account @${request.params.handle}`);
      return { account: { id: account.id, handle: account.handle, createdAt: account.createdAt.toISOString() } };
    },
  );
}
