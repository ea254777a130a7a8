-- The log's state on PostgreSQL: the same kinds as the sled store, plus the
-- head (the latest checkpoint, advanced by compare-and-swap) and the lease
-- that names the one process allowed to sequence.

CREATE TABLE tiles (
    level SMALLINT NOT NULL,
    idx BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE bundles (
    idx BIGINT PRIMARY KEY,
    data BYTEA NOT NULL
);

CREATE TABLE tids (
    tid BYTEA PRIMARY KEY,
    idx BIGINT NOT NULL
);

CREATE TABLE leaves (
    hash BYTEA PRIMARY KEY,
    idx BIGINT NOT NULL
);

-- Every checkpoint the log signed, by tree size.
CREATE TABLE checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);

-- One row: the latest checkpoint.
CREATE TABLE head (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL,
    note TEXT NOT NULL
);

-- One row: who may sequence, until when (the database's clock).
CREATE TABLE lease (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
