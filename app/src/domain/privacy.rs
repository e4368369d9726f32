//! Personal data at rest: the [`Sealer`] port (seal, open, blind index) the store's personal
//! tables are written through, implemented by the key ring ([`crate::crypto::Keyring`]), so
//! `store/` never holds a key and never sees how values are sealed.
//!
//! May import: the leaves (`crypto`, `secret`). Pure otherwise.

use std::fmt::Debug;
use std::sync::Arc;

use crate::crypto::Keyring;
use crate::secret::Secret;

/// Seals and opens personal data, and indexes it without opening it.
pub trait Sealer: Send + Sync + Debug {
    /// `plain` sealed for `context` (a row's identity, so a value moved to another row does
    /// not open).
    fn seal(&self, plain: &str, context: &str) -> String;
    /// The value sealed for `context`; `None` when it does not open (tampered, another row,
    /// a key no longer in the ring).
    fn open(&self, sealed: &str, context: &str) -> Option<String>;
    /// The blind indexes of `value` under every key, the one to store first.
    fn blind(&self, value: &str) -> Vec<String>;
}

impl Sealer for Keyring {
    fn seal(&self, plain: &str, context: &str) -> String {
        Keyring::seal(self, &Secret::new(plain), context)
    }

    fn open(&self, sealed: &str, context: &str) -> Option<String> {
        Keyring::open(self, sealed, context)
            .ok()
            .map(|s| s.expose().to_string())
    }

    fn blind(&self, value: &str) -> Vec<String> {
        Keyring::blind(self, value)
    }
}

pub type SharedSealer = Arc<dyn Sealer>;

/// What a person is known by in a privacy request or an audit entry: a normalized email
/// (lowercase) or an E.164 phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonKey {
    Email(String),
    Phone(String),
}

impl PersonKey {
    /// The value the blind index is computed over (`email:` / `phone:` keep the two apart).
    pub fn indexed(&self) -> String {
        match self {
            PersonKey::Email(e) => format!("email:{}", e.to_lowercase()),
            PersonKey::Phone(p) => format!("phone:{p}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            PersonKey::Email(_) => "email",
            PersonKey::Phone(_) => "phone",
        }
    }
}

/// A phone as the support role sees it, whatever its format: every digit but the last two
/// hidden (`+1 415-555-0100` → `+• •••-•••-••00`).
pub fn mask_phone(phone: &str) -> String {
    let total = phone.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    phone
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 2 > total {
                    c
                } else {
                    '•'
                }
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_and_a_phone_never_share_an_index() {
        assert_eq!(mask_phone("+1 415-555-0100"), "+• •••-•••-••00");
        assert_eq!(mask_phone("4155550100"), "••••••••00");
        assert_ne!(
            PersonKey::Email("A@x.io".into()).indexed(),
            PersonKey::Phone("A@x.io".into()).indexed()
        );
        assert_eq!(PersonKey::Email("A@x.io".into()).indexed(), "email:a@x.io");
    }
}
