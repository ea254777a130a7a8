-- The bank's ledger: one table per record kind of bank/src/records.rs.
-- `key` is the record's key without its table prefix, `value` the record
-- as the ledger encodes it: JSON (readable with convert_from(value,
-- 'UTF8')::jsonb) unless noted. Keys compare bytewise, as on sled.

-- account key (32) -> Account {kind, balance}
CREATE TABLE accounts (key bytea PRIMARY KEY, value bytea NOT NULL);
-- account key (32) || request id (16) -> CreditRecord {amount}
CREATE TABLE credits (key bytea PRIMARY KEY, value bytea NOT NULL);
-- account key (32) || request id (16) -> WithdrawalRecord (idempotency)
CREATE TABLE withdrawals (key bytea PRIMARY KEY, value bytea NOT NULL);
-- token id h(t) (32) -> Registration {customer Q, receipt signature}
CREATE TABLE registrations (key bytea PRIMARY KEY, value bytea NOT NULL);
-- token id (32) -> the TID (16 raw bytes) the token was spent for
CREATE TABLE spent_tokens (key bytea PRIMARY KEY, value bytea NOT NULL);
-- TID (16) -> Escrow (terms, Q, token ids, status, proofs, refund)
CREATE TABLE escrows (key bytea PRIMARY KEY, value bytea NOT NULL);
-- expiration (u64 big-endian) || TID (16) -> empty: open escrows by expiry
CREATE TABLE due (key bytea PRIMARY KEY, value bytea NOT NULL);
-- log origin (UTF-8) -> tree size (u64 big-endian) || checkpoint text
CREATE TABLE checkpoints (key bytea PRIMARY KEY, value bytea NOT NULL);
-- '' -> Totals: the maintained sums. Every transaction that decides a
-- batch locks this table first, so batches of all bank processes are
-- decided one at a time.
CREATE TABLE totals (key bytea PRIMARY KEY, value bytea NOT NULL);
