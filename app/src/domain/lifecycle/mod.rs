//! Lifecycle events: what the product tells us happened to a user (signed up, verified a
//! one-time code, earned nova, …), validated at the edge into an [`Event`], and the contact
//! properties a subject's whole history derives ([`adapters`], named by [`config`]).
//!
//! Properties are derived, never incremented: the same event twice is one event (its
//! `event_id`), and a history gives the same properties whatever order its events arrived in
//! (they are folded in `(occurred_at, event_id)` order, and every fold is a sum, a minimum, a
//! set or the latest by that order).

pub mod adapters;
pub mod check;
pub mod config;

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::contact::Email;

/// The most events one request may carry.
pub const MAX_BATCH: usize = 500;

/// The kinds of event the product sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    UserSignup,
    OtpVerified,
    WalletPassInstalled,
    NovaEarned,
    NovaRedeemed,
    FirstRedemptionCompleted,
    Redemption,
    ExclusiveCompleted,
    MerchantExclusiveEnabled,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        Self::UserSignup,
        Self::OtpVerified,
        Self::WalletPassInstalled,
        Self::NovaEarned,
        Self::NovaRedeemed,
        Self::FirstRedemptionCompleted,
        Self::Redemption,
        Self::ExclusiveCompleted,
        Self::MerchantExclusiveEnabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserSignup => "user_signup",
            Self::OtpVerified => "otp_verified",
            Self::WalletPassInstalled => "wallet_pass_installed",
            Self::NovaEarned => "nova_earned",
            Self::NovaRedeemed => "nova_redeemed",
            Self::FirstRedemptionCompleted => "first_redemption_completed",
            Self::Redemption => "redemption",
            Self::ExclusiveCompleted => "exclusive_completed",
            Self::MerchantExclusiveEnabled => "merchant_exclusive_enabled",
        }
    }

    /// The fields this type's `data` may carry (the parser refuses any other; the timeline
    /// defines its event properties from them).
    pub fn data_fields(self) -> &'static [&'static str] {
        match self {
            Self::UserSignup => &["email", "firstname", "lastname", "phone"],
            Self::OtpVerified => &[],
            Self::WalletPassInstalled => &["platform"],
            Self::NovaEarned | Self::NovaRedeemed => &["amount"],
            Self::FirstRedemptionCompleted | Self::Redemption => &["merchant_id", "amount"],
            Self::ExclusiveCompleted => &["exclusive_id"],
            Self::MerchantExclusiveEnabled => &["merchant_id", "merchant_name", "exclusive_id"],
        }
    }

    pub(crate) fn valid_list() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    /// The old product's name `driver_signed_up` is `user_signup`.
    fn from_str(raw: &str) -> Result<Self, String> {
        if raw == "driver_signed_up" {
            return Ok(Self::UserSignup);
        }
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| format!("unknown event type '{raw}'; valid: {}", Self::valid_list()))
    }
}

/// Who an event is about: the product's user id, an email, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub external_id: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<String>,
}

/// An event's data, typed by its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    UserSignup {
        email: Option<Email>,
        firstname: Option<String>,
        lastname: Option<String>,
        phone: Option<String>,
    },
    OtpVerified,
    WalletPassInstalled {
        platform: String,
    },
    NovaEarned {
        amount: u64,
    },
    NovaRedeemed {
        amount: u64,
    },
    FirstRedemptionCompleted {
        merchant_id: String,
        amount: Option<u64>,
    },
    Redemption {
        merchant_id: String,
        amount: Option<u64>,
    },
    ExclusiveCompleted {
        exclusive_id: String,
    },
    MerchantExclusiveEnabled {
        merchant_id: String,
        merchant_name: String,
        exclusive_id: String,
    },
}

/// A validated lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: String,
    pub event_type: EventType,
    /// Epoch ms.
    pub occurred_at: i64,
    /// The portal (hub id); `None`: the single private-app account.
    pub portal: Option<u64>,
    pub subject: Subject,
    pub data: Data,
}

impl Event {
    /// The subject's email: the subject's own, else the one a signup carries.
    pub fn email(&self) -> Option<&Email> {
        match &self.data {
            Data::UserSignup { email: Some(e), .. } => self.subject.email.as_ref().or(Some(e)),
            _ => self.subject.email.as_ref(),
        }
    }
}

mod parse;

pub use parse::{parse, Invalid};

impl Data {
    /// The data as stored and shown (the inverse of [`data`]).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        match self {
            Data::UserSignup {
                email,
                firstname,
                lastname,
                phone,
            } => {
                if let Some(e) = email {
                    put("email", e.as_str().into());
                }
                for (k, v) in [
                    ("firstname", firstname),
                    ("lastname", lastname),
                    ("phone", phone),
                ] {
                    if let Some(v) = v {
                        put(k, v.clone().into());
                    }
                }
            }
            Data::OtpVerified => {}
            Data::WalletPassInstalled { platform } => put("platform", platform.clone().into()),
            Data::NovaEarned { amount } | Data::NovaRedeemed { amount } => {
                put("amount", (*amount).into())
            }
            Data::FirstRedemptionCompleted {
                merchant_id,
                amount,
            }
            | Data::Redemption {
                merchant_id,
                amount,
            } => {
                put("merchant_id", merchant_id.clone().into());
                if let Some(a) = amount {
                    put("amount", (*a).into());
                }
            }
            Data::ExclusiveCompleted { exclusive_id } => {
                put("exclusive_id", exclusive_id.clone().into())
            }
            Data::MerchantExclusiveEnabled {
                merchant_id,
                merchant_name,
                exclusive_id,
            } => {
                put("merchant_id", merchant_id.clone().into());
                put("merchant_name", merchant_name.clone().into());
                put("exclusive_id", exclusive_id.clone().into());
            }
        }
        Value::Object(m)
    }

    /// Reads stored data back (written by [`Data::to_json`], so already valid).
    pub fn from_stored(t: EventType, stored: &Value) -> Result<Self, Invalid> {
        let empty = Map::new();
        parse::stored_data(t, stored.as_object().unwrap_or(&empty))
    }
}
