//! `merchant_exclusive_enabled`: the merchants the subject enabled exclusives for (their
//! names, the latest given, and the exclusives of each).

use std::collections::{BTreeMap, BTreeSet};

use super::{canonical, Profile};
use crate::domain::lifecycle::config::LifecycleConfig;
use crate::domain::lifecycle::{Data, Event};

/// A merchant's company, from every `merchant_exclusive_enabled` event naming it (whoever sent
/// it): its name (the latest given) and how many distinct exclusives it enabled, by the
/// configured property names (the merchant id property included).
pub fn company_properties<'a>(
    merchant_id: &str,
    events: impl IntoIterator<Item = &'a Event>,
    config: &LifecycleConfig,
) -> BTreeMap<String, String> {
    let mut sorted: Vec<&Event> = events.into_iter().collect();
    canonical(&mut sorted);
    let mut name = None;
    let mut exclusives = BTreeSet::new();
    for e in sorted {
        if let Data::MerchantExclusiveEnabled {
            merchant_id: m,
            merchant_name,
            exclusive_id,
        } = &e.data
        {
            if m == merchant_id {
                name = Some(merchant_name.clone());
                exclusives.insert(exclusive_id.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    out.insert(config.merchant_id_property.clone(), merchant_id.to_string());
    if let Some(name) = name {
        out.insert("name".into(), name);
    }
    if let Some(p) = &config.exclusives_enabled_property {
        out.insert(p.clone(), exclusives.len().to_string());
    }
    out
}

pub fn apply(p: &mut Profile, e: &Event) {
    let Data::MerchantExclusiveEnabled {
        merchant_id,
        merchant_name,
        exclusive_id,
    } = &e.data
    else {
        return;
    };
    let entry = p
        .merchants
        .entry(merchant_id.clone())
        .or_insert_with(|| (merchant_name.clone(), Default::default()));
    entry.0.clone_from(merchant_name);
    entry.1.insert(exclusive_id.clone());
}

#[cfg(test)]
mod tests {
    use super::super::tests::event;
    use super::super::*;
    use super::company_properties;

    #[test]
    fn each_merchant_with_its_latest_name_and_its_exclusives() {
        let enable = |id: &str, at, name: &str, x: &str| {
            event(
                id,
                at,
                Data::MerchantExclusiveEnabled {
                    merchant_id: "m1".into(),
                    merchant_name: name.into(),
                    exclusive_id: x.into(),
                },
            )
        };
        let p = fold(&[
            enable("b", 20, "Cafe Nova", "x2"),
            enable("a", 10, "Cafe", "x1"),
        ]);
        let (name, exclusives) = &p.merchants["m1"];
        assert_eq!(name, "Cafe Nova");
        assert_eq!(exclusives.len(), 2);
        let config = crate::domain::lifecycle::config::LifecycleConfig::default();
        let events = [
            enable("b", 20, "Cafe Nova", "x2"),
            enable("a", 10, "Cafe", "x1"),
            enable("c", 5, "Old", "x1"),
        ];
        let company = company_properties("m1", &events, &config);
        assert_eq!(company["name"], "Cafe Nova", "the latest name");
        assert_eq!(company["exclusives_enabled"], "2");
        assert_eq!(company["product_merchant_id"], "m1");
    }
}
