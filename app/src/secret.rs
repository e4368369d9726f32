//! Secrets: [`Secret`], whose `Debug` never shows the value, and [`same`], the one
//! constant-time comparison of a secret with what a caller sent (admin tokens, session
//! cookies, webhook signatures).
//!
//! A leaf: imports nothing of the app.

use std::fmt;

use subtle::ConstantTimeEq;

/// A value that must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Whether `given` equals `expected`, in time that does not depend on where they differ (the
/// length may show; the content does not).
pub fn same(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}
