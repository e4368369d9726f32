//! `nova_earned` and `nova_redeemed`: the totals, whose difference is the balance (which may
//! go below zero when a redemption is delivered before the earning that paid for it; it
//! settles when both are in).

use super::Profile;
use crate::domain::lifecycle::{Data, Event};

pub fn apply(p: &mut Profile, e: &Event) {
    match &e.data {
        Data::NovaEarned { amount } => p.nova_earned += amount,
        Data::NovaRedeemed { amount } => p.nova_redeemed += amount,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::event;
    use super::super::*;

    #[test]
    fn the_balance_is_earned_less_redeemed_and_a_repeat_counts_once() {
        let earned = event("a", 10, Data::NovaEarned { amount: 100 });
        let redeemed = event("b", 5, Data::NovaRedeemed { amount: 30 });
        let p = fold(&[redeemed.clone(), earned.clone(), earned]);
        let props = p.properties(&crate::domain::lifecycle::config::LifecycleConfig::default());
        assert_eq!(props["nova_balance"], "70");
        assert_eq!(props["nova_earned_total"], "100");
        assert_eq!(props["nova_redeemed_total"], "30");
    }
}
