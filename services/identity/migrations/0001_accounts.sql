-- Accounts: who can log in. Profiles, posts and follows belong to the social service.
CREATE TABLE accounts (
  id            bigint      PRIMARY KEY,           -- Snowflake id: time-ordered, made by the service
  handle        text        NOT NULL,
  email         text        NOT NULL,
  password_hash text        NOT NULL,              -- argon2id, PHC string format
  created_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT accounts_handle_format CHECK (handle ~ '^[a-z0-9_]{3,30}$'),
  CONSTRAINT accounts_email_normalized CHECK (email = lower(email) AND position('@' IN email) > 1)
);

-- Both are login keys, so both are unique; the names are what the service maps to 409s.
CREATE UNIQUE INDEX accounts_handle_key ON accounts (handle);
CREATE UNIQUE INDEX accounts_email_key ON accounts (email);
