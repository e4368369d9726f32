//! Which HubSpot properties a subject's history sets: names are configuration with defaults
//! (`LIFECYCLE_FILE`, YAML), not literals in handlers. A name set to `null` is not sent.
//! Also which event types go to HubSpot's timeline as custom events (none by default).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::EventType;

/// One derived fact of a subject and the HubSpot contact property that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    SignedUpAt,
    OtpVerifiedAt,
    WalletPassInstalledAt,
    WalletPassPlatform,
    NovaEarnedTotal,
    NovaRedeemedTotal,
    NovaBalance,
    TotalRedemptions,
    FirstRedemptionAt,
    LastRedemptionAt,
    ExclusivesCompleted,
    /// Set once, on the first `exclusive_completed`: never sent again, so a stage changed in
    /// HubSpot afterwards stays.
    Stage,
}

impl Fact {
    pub const ALL: [Fact; 12] = [
        Self::SignedUpAt,
        Self::OtpVerifiedAt,
        Self::WalletPassInstalledAt,
        Self::WalletPassPlatform,
        Self::NovaEarnedTotal,
        Self::NovaRedeemedTotal,
        Self::NovaBalance,
        Self::TotalRedemptions,
        Self::FirstRedemptionAt,
        Self::LastRedemptionAt,
        Self::ExclusivesCompleted,
        Self::Stage,
    ];

    /// The default property name.
    pub fn default_property(self) -> &'static str {
        match self {
            Self::SignedUpAt => "driver_signed_up_at",
            Self::OtpVerifiedAt => "otp_verified_at",
            Self::WalletPassInstalledAt => "wallet_pass_installed_at",
            Self::WalletPassPlatform => "wallet_pass_platform",
            Self::NovaEarnedTotal => "nova_earned_total",
            Self::NovaRedeemedTotal => "nova_redeemed_total",
            Self::NovaBalance => "nova_balance",
            Self::TotalRedemptions => "total_redemptions",
            Self::FirstRedemptionAt => "first_redemption_at",
            Self::LastRedemptionAt => "last_redemption_at",
            Self::ExclusivesCompleted => "exclusives_completed",
            Self::Stage => "driver_stage",
        }
    }

    /// The property's HubSpot type, and its options when an enumeration (what the app creates
    /// when the portal lacks it, and what a dry run checks values against).
    pub fn kind(self, config: &LifecycleConfig) -> (&'static str, Vec<String>) {
        match self {
            Self::SignedUpAt
            | Self::OtpVerifiedAt
            | Self::WalletPassInstalledAt
            | Self::FirstRedemptionAt
            | Self::LastRedemptionAt => ("datetime", Vec::new()),
            Self::WalletPassPlatform => ("enumeration", vec!["apple".into(), "google".into()]),
            Self::NovaEarnedTotal
            | Self::NovaRedeemedTotal
            | Self::NovaBalance
            | Self::TotalRedemptions
            | Self::ExclusivesCompleted => ("number", Vec::new()),
            Self::Stage => ("enumeration", config.stages.clone()),
        }
    }

    pub fn set_once(self) -> bool {
        self == Self::Stage
    }
}

/// The lifecycle configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// The unique contact property holding the product's user id (created with
    /// `hasUniqueValue` when the portal lacks it); the upsert key of subjects that have one.
    pub external_id_property: String,
    /// The unique company property holding the product's merchant id (created with
    /// `hasUniqueValue` when missing): a merchant's company is upserted by it.
    pub merchant_id_property: String,
    /// The company property counting the exclusives a merchant enabled (`null`: not sent).
    pub exclusives_enabled_property: Option<String>,
    /// Fact → property name (`null`: not sent). Facts left out keep their default name.
    pub properties: BTreeMap<Fact, Option<String>>,
    /// The stage the first `exclusive_completed` sets.
    pub engaged_stage: String,
    /// The options of the stage property when the app creates it.
    pub stages: Vec<String>,
    /// Event types also sent to HubSpot's timeline as custom event occurrences.
    pub timeline: BTreeSet<EventTypeName>,
}

/// An event type's name in configuration (`nova_earned`).
pub type EventTypeName = String;

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            external_id_property: "product_user_id".into(),
            merchant_id_property: "product_merchant_id".into(),
            exclusives_enabled_property: Some("exclusives_enabled".into()),
            properties: BTreeMap::new(),
            engaged_stage: "engaged_driver".into(),
            stages: vec![
                "signed_up".into(),
                "engaged_driver".into(),
                "churned".into(),
            ],
            timeline: BTreeSet::new(),
        }
    }
}

impl LifecycleConfig {
    /// Reads and checks the YAML form; the error names what is wrong.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let config: Self = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let valid = |name: &str| {
            !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !valid(&self.external_id_property) {
            return Err(format!(
                "external_id_property '{}': a HubSpot property name (lowercase letters, digits, _)",
                self.external_id_property
            ));
        }
        if !valid(&self.merchant_id_property) {
            return Err(format!(
                "merchant_id_property '{}': a HubSpot property name (lowercase letters, digits, _)",
                self.merchant_id_property
            ));
        }
        if let Some(p) = &self.exclusives_enabled_property {
            if !valid(p) || *p == self.merchant_id_property {
                return Err(format!(
                    "exclusives_enabled_property '{p}': a HubSpot property name of its own"
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for fact in Fact::ALL {
            if let Some(name) = self.property(fact) {
                if !valid(name) {
                    return Err(format!(
                        "properties.{fact:?}: '{name}' is not a HubSpot property name"
                    ));
                }
                if !seen.insert(name.to_string()) || name == self.external_id_property {
                    return Err(format!(
                        "properties: '{name}' is named twice; each fact needs its own property"
                    ));
                }
            }
        }
        if !self.stages.contains(&self.engaged_stage) {
            return Err(format!(
                "engaged_stage '{}' is not one of stages ({})",
                self.engaged_stage,
                self.stages.join(", ")
            ));
        }
        for t in &self.timeline {
            t.parse::<EventType>()
                .map_err(|e| format!("timeline: {e}"))?;
        }
        Ok(())
    }

    /// The property a fact is sent as, if any.
    pub fn property(&self, fact: Fact) -> Option<&str> {
        match self.properties.get(&fact) {
            Some(name) => name.as_deref(),
            None => Some(fact.default_property()),
        }
    }

    /// Whether this type's events also go to the timeline.
    pub fn on_timeline(&self, t: EventType) -> bool {
        self.timeline.contains(t.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_and_can_be_renamed_or_dropped() {
        let c = LifecycleConfig::from_yaml(
            "properties:\n  nova_balance: points_balance\n  stage: null\ntimeline: [nova_earned]\n",
        )
        .unwrap();
        assert_eq!(c.property(Fact::NovaBalance), Some("points_balance"));
        assert_eq!(c.property(Fact::Stage), None);
        assert_eq!(
            c.property(Fact::TotalRedemptions),
            Some("total_redemptions")
        );
        assert!(c.on_timeline(EventType::NovaEarned));
        assert!(!c.on_timeline(EventType::Redemption));
    }

    #[test]
    fn bad_configuration_says_what_is_wrong() {
        for (yaml, says) in [
            (
                "properties:\n  nova_balance: Nova Balance\n",
                "not a HubSpot property name",
            ),
            (
                "properties:\n  nova_balance: total_redemptions\n",
                "named twice",
            ),
            ("timeline: [teleported]\n", "unknown event type"),
            ("engaged_stage: hero\n", "not one of stages"),
            ("propertys: {}\n", "unknown field"),
        ] {
            let e = LifecycleConfig::from_yaml(yaml).unwrap_err();
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }
}
