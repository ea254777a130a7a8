//! Misbehaviour on purpose, so that tests and the demo can show that the
//! protocol protects the customer anyway (a withheld key is read from the
//! log, a missing commit ends in an abort and a refund, a bogus key or
//! wrong goods in a dispute). Settable only with the crate's `misbehave`
//! feature, which the tests and the demo enable: no flag or config file
//! reaches it, and a merchant built without the feature is always honest.

/// Which misbehaviour is switched on. All false by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Commit k to the log, but answer the purchase (and delivery queries)
    /// with 503 and no key: the customer must read k from the log.
    pub withhold_key: bool,
    /// Accept the purchase but never commit (answer 503): the escrow
    /// expires and the bank aborts.
    pub never_commit: bool,
    /// Commit a random key instead of the k that encrypted the goods: the
    /// customer's dispute finds that the logged key does not decrypt.
    pub bogus_key: bool,
    /// Encrypt goods whose hash differs from the offer's plain-goods hash:
    /// the customer's dispute finds the wrong goods.
    pub wrong_goods: bool,
}
