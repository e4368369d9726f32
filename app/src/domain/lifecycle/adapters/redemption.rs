//! `redemption` and `first_redemption_completed`: the number of redemptions (each
//! `redemption` event), the first and the latest redemption time (either type).

use super::{earliest, latest, Profile};
use crate::domain::lifecycle::{Data, Event};

pub fn apply(p: &mut Profile, e: &Event) {
    match &e.data {
        Data::Redemption { .. } => p.redemptions += 1,
        Data::FirstRedemptionCompleted { .. } => {}
        _ => return,
    }
    earliest(&mut p.first_redemption_at, e.occurred_at);
    latest(&mut p.last_redemption_at, e.occurred_at);
}

#[cfg(test)]
mod tests {
    use super::super::tests::event;
    use super::super::*;

    #[test]
    fn counts_redemptions_and_dates_the_first_and_last() {
        let r = |id: &str, at| {
            event(
                id,
                at,
                Data::Redemption {
                    merchant_id: "m".into(),
                    amount: None,
                },
            )
        };
        let first = event(
            "f",
            15,
            Data::FirstRedemptionCompleted {
                merchant_id: "m".into(),
                amount: None,
            },
        );
        let p = fold(&[r("c", 30), first, r("b", 20)]);
        assert_eq!(p.redemptions, 2);
        assert_eq!(p.first_redemption_at, Some(15));
        assert_eq!(p.last_redemption_at, Some(30));
    }
}
