//! `merchant_exclusive_enabled`: the merchants the subject enabled exclusives for (their
//! names, the latest given, and the exclusives of each).

use super::Profile;
use crate::domain::lifecycle::{Data, Event};

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
    }
}
