-- The merchant's purchases (clients/merchant/src/store.rs): one row per TID
-- the bank escrowed. Unsold offers are not stored.
CREATE TABLE purchases (
    -- the TID, 16 raw bytes
    tid bytea PRIMARY KEY,
    -- how far the purchase has gone: 1 escrowed, 2 committed, 3 final
    -- (deposited, aborted, unpaid or failed). A write never lowers it, so
    -- two front-ends racing on one TID cannot move a purchase backwards.
    stage smallint NOT NULL,
    -- work left: a commit or a deposit to try
    pending boolean NOT NULL,
    -- the Purchase record as JSON (convert_from(record, 'UTF8')::jsonb)
    record bytea NOT NULL
);
CREATE INDEX purchases_pending ON purchases (tid) WHERE pending;
