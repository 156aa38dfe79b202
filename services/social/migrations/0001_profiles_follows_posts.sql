-- Profiles, the follow graph and posts. Ids are Snowflake bigints made by the services:
-- time-ordered, so `ORDER BY id DESC` is newest-first and they can later key time
-- partitions and shards without a central sequence.

CREATE TABLE profiles (
  user_id          bigint      PRIMARY KEY,      -- the identity account id
  handle           text        NOT NULL,
  display_name     text,
  bio              text,
  -- Deliberate denormalization: counts read on every profile view, kept exact by updating
  -- them in the same transaction as the row they count (see docs/data-model.md).
  followers_count  bigint      NOT NULL DEFAULT 0 CHECK (followers_count >= 0),
  following_count  bigint      NOT NULL DEFAULT 0 CHECK (following_count >= 0),
  posts_count      bigint      NOT NULL DEFAULT 0 CHECK (posts_count >= 0),
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT profiles_handle_format CHECK (handle ~ '^[a-z0-9_]{3,30}$'),
  CONSTRAINT profiles_display_name_length CHECK (char_length(display_name) <= 50),
  CONSTRAINT profiles_bio_length CHECK (char_length(bio) <= 160)
);
CREATE UNIQUE INDEX profiles_handle_key ON profiles (handle);

CREATE TABLE follows (
  follower_id bigint      NOT NULL REFERENCES profiles (user_id) ON DELETE CASCADE,
  followee_id bigint      NOT NULL REFERENCES profiles (user_id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (follower_id, followee_id),          -- no double follow
  CONSTRAINT follows_no_self CHECK (follower_id <> followee_id)
);
-- "Who follows X": the primary key serves "whom does X follow".
CREATE INDEX follows_followee_idx ON follows (followee_id, follower_id);

CREATE TABLE posts (
  id         bigint      PRIMARY KEY,
  author_id  bigint      NOT NULL REFERENCES profiles (user_id) ON DELETE CASCADE,
  text       text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT posts_text_length CHECK (char_length(text) BETWEEN 1 AND 500)
);
-- A user's posts, newest first, with keyset pagination on id.
CREATE INDEX posts_author_idx ON posts (author_id, id DESC);
