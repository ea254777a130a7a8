//! `acd-testkit`: test support shared by the log, bank, merchant, wallet
//! and end-to-end tests. Only tests depend on it (as a dev-dependency), so
//! nothing here can reach a server binary.
//!
//! - [`mutation`]: hostile peers: valid JSON mutated at one place, the
//!   check every answer to it must pass, and a server's own count of 500s.
//! - [`pgdb`]: scratch PostgreSQL databases.

#![allow(clippy::unwrap_used)]

pub mod mutation;
pub mod pgdb;
