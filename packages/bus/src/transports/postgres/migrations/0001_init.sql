-- The PostgreSQL transport of @agora/bus. Applied by migrate() with search_path set to the
-- transport's schema (default `bus`), so names here are unqualified.

create table topics (
  name text primary key,
  partitions int not null check (partitions >= 1),
  max_message_bytes int not null check (max_message_bytes >= 1),
  max_unacked int check (max_unacked >= 1),
  on_full text not null check (on_full in ('wait', 'reject')),
  created_at timestamptz not null default now()
);

create table groups (
  topic text not null references topics (name),
  name text not null,
  created_at timestamptz not null default now(),
  primary key (topic, name)
);

-- The log. seq is global, so per topic it grows in publish order; a message stays while any
-- delivery row points at it, or, on a topic without groups, until a group takes it.
create table messages (
  topic text not null references topics (name),
  seq bigint generated always as identity,
  partition int not null,
  id text not null,
  key text,
  headers jsonb not null,
  body text not null,
  published_at timestamptz not null default now(),
  primary key (topic, seq)
);

-- One row per (group, message) not yet settled: fan-out on write. The oldest row of a
-- (topic, grp, partition) is the partition's head; only the head is ever delivered.
-- visible_at: when a 'ready' row may be claimed (backoff), or when an 'inflight' lease
-- expires (visibility timeout). Both compare with the server's now().
create table deliveries (
  topic text not null,
  grp text not null,
  partition int not null,
  seq bigint not null,
  state text not null default 'ready' check (state in ('ready', 'inflight')),
  attempts int not null default 0,
  visible_at timestamptz not null default now(),
  token uuid,
  errors jsonb not null default '[]'::jsonb,
  primary key (topic, grp, partition, seq),
  foreign key (topic, seq) references messages (topic, seq),
  foreign key (topic, grp) references groups (topic, name)
);
-- Retention: "does any group still hold this message?", and the foreign key's own checks.
create index deliveries_message on deliveries (topic, seq);

create table dead_letters (
  id bigint generated always as identity primary key,
  topic text not null,
  grp text not null,
  partition int not null,
  message_id text not null,
  key text,
  headers jsonb not null,
  body text not null,
  published_at timestamptz not null,
  attempts int not null,
  errors jsonb not null,
  dead_at timestamptz not null default now()
);
create index dead_letters_group on dead_letters (topic, grp, id);

-- Deletes a message once no group holds it. Called after the caller deleted its own delivery
-- row. The row lock serialises two groups settling the same message at once: the second one
-- to get the lock runs its NOT EXISTS on a fresh snapshot and sees the first one's delete.
create function release_message(p_topic text, p_seq bigint) returns void
language plpgsql set search_path from current as $$
begin
  perform 1 from messages where topic = p_topic and seq = p_seq for update;
  if not exists (select 1 from deliveries where topic = p_topic and seq = p_seq) then
    delete from messages where topic = p_topic and seq = p_seq;
  end if;
end $$;

-- Wakes publishers waiting for room on a bounded 'wait' topic (payload 's:' || topic).
create function notify_settled(p_channel text, p_topic text) returns void
language plpgsql set search_path from current as $$
begin
  if exists (select 1 from topics where name = p_topic and max_unacked is not null and on_full = 'wait') then
    perform pg_notify(p_channel, 's:' || p_topic);
  end if;
end $$;

-- Ack: only the holder of the current lease (token) settles; a late ack of an expired lease
-- is a no-op returning false, so it cannot ack the redelivery.
create function ack_delivery(p_channel text, p_topic text, p_grp text, p_partition int, p_seq bigint, p_token uuid)
returns boolean
language plpgsql set search_path from current as $$
begin
  delete from deliveries
   where topic = p_topic and grp = p_grp and partition = p_partition and seq = p_seq and token = p_token;
  if not found then
    return false;
  end if;
  perform release_message(p_topic, p_seq);
  perform notify_settled(p_channel, p_topic);
  return true;
end $$;

-- Dead-letters a delivery: copies the message with the group's errors (plus p_error, when not
-- null) into dead_letters and settles the delivery. p_token null means "whatever the lease";
-- otherwise it must match. p_attempts overrides the row's count (a claim that found the last
-- attempt timed out has already counted one more). Returns the dead letter id, or null.
create function dead_letter_delivery(
  p_channel text, p_topic text, p_grp text, p_partition int, p_seq bigint, p_token uuid, p_error jsonb,
  p_attempts int
) returns bigint
language plpgsql set search_path from current as $$
declare
  v_attempts int;
  v_errors jsonb;
  v_id bigint;
begin
  delete from deliveries
   where topic = p_topic and grp = p_grp and partition = p_partition and seq = p_seq
     and (p_token is null or token = p_token)
  returning attempts, errors into v_attempts, v_errors;
  if not found then
    return null;
  end if;
  insert into dead_letters (topic, grp, partition, message_id, key, headers, body, published_at, attempts, errors)
  select m.topic, p_grp, m.partition, m.id, m.key, m.headers, m.body, m.published_at, coalesce(p_attempts, v_attempts),
         case when p_error is null then v_errors else v_errors || jsonb_build_array(p_error) end
    from messages m
   where m.topic = p_topic and m.seq = p_seq
  returning id into v_id;
  perform release_message(p_topic, p_seq);
  perform notify_settled(p_channel, p_topic);
  return v_id;
end $$;
