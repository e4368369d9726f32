//! The adapters: one small module per event type, each a fold step from an event to the
//! subject's [`Profile`] (the facts its history establishes). [`Profile::properties`] names
//! the facts as HubSpot contact properties ([`super::config`]).
//!
//! Every step is a sum, a minimum, a maximum, a set insertion or "the latest by
//! `(occurred_at, event_id)`", and [`fold`] applies events in that order after dropping
//! repeated `event_id`s: a history gives one profile however it was delivered.

mod exclusive;
pub mod merchant;
mod nova;
mod otp;
mod redemption;
mod signup;
mod wallet;

use std::collections::{BTreeMap, BTreeSet};

use super::config::{Fact, LifecycleConfig};
use super::{Data, Event};

/// What a subject's history establishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub email: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub phone: Option<String>,
    pub signed_up_at: Option<i64>,
    pub otp_verified_at: Option<i64>,
    pub wallet_pass_installed_at: Option<i64>,
    pub wallet_pass_platform: Option<String>,
    pub nova_earned: u64,
    pub nova_redeemed: u64,
    pub redemptions: u64,
    pub first_redemption_at: Option<i64>,
    pub last_redemption_at: Option<i64>,
    pub exclusives: BTreeSet<String>,
    pub first_exclusive_at: Option<i64>,
    /// Merchants this subject enabled exclusives for: id → (name, exclusives).
    pub merchants: BTreeMap<String, (String, BTreeSet<String>)>,
}

fn earliest(slot: &mut Option<i64>, at: i64) {
    *slot = Some(slot.map_or(at, |s| s.min(at)));
}

fn latest(slot: &mut Option<i64>, at: i64) {
    *slot = Some(slot.map_or(at, |s| s.max(at)));
}

impl Profile {
    /// Applies one event (called in canonical order by [`fold`]).
    pub fn apply(&mut self, event: &Event) {
        if let Some(email) = event.subject.email.as_ref() {
            self.email = Some(email.as_str().to_string());
        }
        if let Some(phone) = &event.subject.phone {
            self.phone = Some(phone.clone());
        }
        match &event.data {
            Data::UserSignup { .. } => signup::apply(self, event),
            Data::OtpVerified => otp::apply(self, event),
            Data::WalletPassInstalled { .. } => wallet::apply(self, event),
            Data::NovaEarned { .. } | Data::NovaRedeemed { .. } => nova::apply(self, event),
            Data::Redemption { .. } | Data::FirstRedemptionCompleted { .. } => {
                redemption::apply(self, event)
            }
            Data::ExclusiveCompleted { .. } => exclusive::apply(self, event),
            Data::MerchantExclusiveEnabled { .. } => merchant::apply(self, event),
        }
    }

    /// The facts as HubSpot contact properties (strings, as HubSpot takes them), by the
    /// configured names. Identity (`email`, the external id) is the caller's to add.
    pub fn properties(&self, config: &LifecycleConfig) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, value) in [
            ("firstname", self.firstname.clone()),
            ("lastname", self.lastname.clone()),
            ("phone", self.phone.clone()),
        ] {
            if let Some(v) = value {
                out.insert(name.to_string(), v);
            }
        }
        for fact in Fact::ALL {
            let (Some(name), Some(value)) = (config.property(fact), self.fact(fact, config)) else {
                continue;
            };
            out.insert(name.to_string(), value);
        }
        out
    }

    fn fact(&self, fact: Fact, config: &LifecycleConfig) -> Option<String> {
        let time = |t: Option<i64>| t.map(format_ms);
        match fact {
            Fact::SignedUpAt => time(self.signed_up_at),
            Fact::OtpVerifiedAt => time(self.otp_verified_at),
            Fact::WalletPassInstalledAt => time(self.wallet_pass_installed_at),
            Fact::WalletPassPlatform => self.wallet_pass_platform.clone(),
            Fact::NovaEarnedTotal => Some(self.nova_earned.to_string()),
            Fact::NovaRedeemedTotal => Some(self.nova_redeemed.to_string()),
            Fact::NovaBalance => {
                Some((self.nova_earned as i128 - self.nova_redeemed as i128).to_string())
            }
            Fact::TotalRedemptions => Some(self.redemptions.to_string()),
            Fact::FirstRedemptionAt => time(self.first_redemption_at),
            Fact::LastRedemptionAt => time(self.last_redemption_at),
            Fact::ExclusivesCompleted => Some(self.exclusives.len().to_string()),
            Fact::Stage => self
                .first_exclusive_at
                .map(|_| config.engaged_stage.clone()),
        }
    }
}

/// The set-once properties (by configured name): sent in the first delivery that has them,
/// never again.
pub fn set_once(config: &LifecycleConfig) -> BTreeSet<String> {
    Fact::ALL
        .into_iter()
        .filter(|f| f.set_once())
        .filter_map(|f| config.property(f).map(str::to_string))
        .collect()
}

/// RFC 3339 in UTC with milliseconds, as HubSpot writes datetimes.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The canonical order of a history: `(occurred_at, event_id)`.
pub(crate) fn canonical(events: &mut Vec<&Event>) {
    events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
    events.dedup_by(|a, b| a.event_id == b.event_id);
}

/// The profile of a history, whatever order (and however many times) its events came.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Profile {
    let mut sorted: Vec<&Event> = events.into_iter().collect();
    canonical(&mut sorted);
    let mut profile = Profile::default();
    for e in sorted {
        profile.apply(e);
    }
    profile
}

/// What one event of a history changed: the properties of the history up to and including it
/// that differ from those of the history before it (canonical order).
pub fn changes_of(
    history: &[Event],
    event_id: &str,
    config: &LifecycleConfig,
) -> BTreeMap<String, String> {
    let mut sorted: Vec<&Event> = history.iter().collect();
    canonical(&mut sorted);
    let Some(at) = sorted.iter().position(|e| e.event_id == event_id) else {
        return BTreeMap::new();
    };
    let before = fold(sorted[..at].iter().copied()).properties(config);
    let after = fold(sorted[..=at].iter().copied()).properties(config);
    after
        .into_iter()
        .filter(|(k, v)| before.get(k) != Some(v))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::lifecycle::{EventType, Subject};

    /// An event of user `u1` at `at` ms.
    pub fn event(id: &str, at: i64, data: Data) -> Event {
        let event_type = match &data {
            Data::UserSignup { .. } => EventType::UserSignup,
            Data::OtpVerified => EventType::OtpVerified,
            Data::WalletPassInstalled { .. } => EventType::WalletPassInstalled,
            Data::NovaEarned { .. } => EventType::NovaEarned,
            Data::NovaRedeemed { .. } => EventType::NovaRedeemed,
            Data::FirstRedemptionCompleted { .. } => EventType::FirstRedemptionCompleted,
            Data::Redemption { .. } => EventType::Redemption,
            Data::ExclusiveCompleted { .. } => EventType::ExclusiveCompleted,
            Data::MerchantExclusiveEnabled { .. } => EventType::MerchantExclusiveEnabled,
        };
        Event {
            event_id: id.into(),
            event_type,
            occurred_at: at,
            portal: None,
            subject: Subject {
                external_id: Some("u1".into()),
                email: None,
                phone: None,
            },
            data,
        }
    }

    #[test]
    fn a_history_gives_one_profile_in_any_order_and_with_repeats() {
        let history = vec![
            event("a", 10, Data::NovaEarned { amount: 50 }),
            event("b", 20, Data::NovaRedeemed { amount: 20 }),
            event(
                "c",
                30,
                Data::Redemption {
                    merchant_id: "m".into(),
                    amount: Some(20),
                },
            ),
            event(
                "d",
                40,
                Data::ExclusiveCompleted {
                    exclusive_id: "x1".into(),
                },
            ),
            event(
                "e",
                5,
                Data::WalletPassInstalled {
                    platform: "apple".into(),
                },
            ),
            event(
                "f",
                50,
                Data::WalletPassInstalled {
                    platform: "google".into(),
                },
            ),
        ];
        let config = LifecycleConfig::default();
        let expected = fold(&history).properties(&config);
        let mut shuffled: Vec<Event> = history.iter().rev().cloned().collect();
        shuffled.extend(history.iter().cloned());
        shuffled.rotate_left(3);
        assert_eq!(fold(&shuffled).properties(&config), expected);
        assert_eq!(expected["nova_balance"], "30");
        assert_eq!(expected["total_redemptions"], "1");
        assert_eq!(
            expected["wallet_pass_platform"], "google",
            "the latest install's"
        );
        assert_eq!(
            expected["wallet_pass_installed_at"], "1970-01-01T00:00:00.005Z",
            "the first install's"
        );
        assert_eq!(expected["driver_stage"], "engaged_driver");
    }

    #[test]
    fn an_event_s_changes_are_what_it_added_to_the_history_before_it() {
        let history = vec![
            event("a", 10, Data::NovaEarned { amount: 50 }),
            event("b", 20, Data::NovaEarned { amount: 5 }),
        ];
        let c = changes_of(&history, "b", &LifecycleConfig::default());
        assert_eq!(c.get("nova_balance").map(String::as_str), Some("55"));
        assert_eq!(c.get("nova_earned_total").map(String::as_str), Some("55"));
        assert!(!c.contains_key("nova_redeemed_total"), "unchanged: {c:?}");
    }
}
