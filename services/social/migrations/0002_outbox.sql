-- The transactional outbox: events are written here in the transaction of the change they
-- report, and published by the relay after commit (packages/bus/src/outbox).
CREATE TABLE outbox (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- publish order
  id         text        NOT NULL UNIQUE,                      -- the message (envelope) id
  topic      text        NOT NULL,
  key        text,
  headers    jsonb       NOT NULL DEFAULT '{}',
  body       text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
