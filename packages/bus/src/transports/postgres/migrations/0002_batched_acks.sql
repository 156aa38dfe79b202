-- Faster claims and acks. Applied by migrate() with search_path set to the transport's
-- schema, so names here are unqualified.

-- A claim asks "does a later delivery of this (group, partition) hold a live lease?". Only
-- in-flight rows can, and a (group, partition) has at most a few: an index lookup instead of
-- a walk over the partition's whole backlog.
create index deliveries_inflight on deliveries (topic, grp, partition, seq) where state = 'inflight';

-- Acks many deliveries of one group at once: ack_delivery for each (only the holder of the
-- current lease, by token, settles; a late ack of an expired lease is a no-op), then deletes
-- the messages no group holds any more, as release_message does: lock them first (in seq
-- order, so two batches cannot deadlock), then look for deliveries with a fresh snapshot, which
-- sees another group's settlement that committed while we waited for the lock. p_channel null
-- skips notify_settled (the topic is not a bounded 'wait' one: nobody waits for room).
-- Returns how many deliveries were settled.
create function ack_deliveries(
  p_channel text, p_topic text, p_grp text, p_partitions int[], p_seqs bigint[], p_tokens uuid[]
) returns int
language plpgsql set search_path from current as $$
declare
  v_seqs bigint[] := '{}';
  v_seq bigint;
begin
  -- One primary key lookup each (a join with unnest() may get a generic plan that scans).
  for i in 1 .. coalesce(cardinality(p_seqs), 0) loop
    delete from deliveries
     where topic = p_topic and grp = p_grp and partition = p_partitions[i] and seq = p_seqs[i]
       and token = p_tokens[i]
    returning seq into v_seq;
    if found then
      v_seqs := v_seqs || v_seq;
    end if;
  end loop;
  if cardinality(v_seqs) = 0 then
    return 0;
  end if;
  perform 1 from messages where topic = p_topic and seq = any (v_seqs) order by seq for update;
  delete from messages m
   where m.topic = p_topic and m.seq = any (v_seqs)
     and not exists (select 1 from deliveries x where x.topic = p_topic and x.seq = m.seq);
  if p_channel is not null then
    perform notify_settled(p_channel, p_topic);
  end if;
  return cardinality(v_seqs);
end $$;
