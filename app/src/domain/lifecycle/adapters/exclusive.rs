//! `exclusive_completed`: the distinct exclusives completed, and the first completion's time,
//! which sets the stage (a set-once property: see [`crate::domain::lifecycle::config::Fact::Stage`]).

use super::{earliest, Profile};
use crate::domain::lifecycle::{Data, Event};

pub fn apply(p: &mut Profile, e: &Event) {
    let Data::ExclusiveCompleted { exclusive_id } = &e.data else {
        return;
    };
    p.exclusives.insert(exclusive_id.clone());
    earliest(&mut p.first_exclusive_at, e.occurred_at);
}

#[cfg(test)]
mod tests {
    use super::super::tests::event;
    use super::super::*;
    use crate::domain::lifecycle::config::LifecycleConfig;

    #[test]
    fn distinct_exclusives_and_the_stage_from_the_first() {
        let done = |id: &str, at, x: &str| {
            event(
                id,
                at,
                Data::ExclusiveCompleted {
                    exclusive_id: x.into(),
                },
            )
        };
        let p = fold(&[
            done("b", 20, "x1"),
            done("a", 10, "x1"),
            done("c", 30, "x2"),
        ]);
        assert_eq!(p.exclusives.len(), 2);
        assert_eq!(p.first_exclusive_at, Some(10));
        let config = LifecycleConfig::default();
        assert_eq!(p.properties(&config)["driver_stage"], "engaged_driver");
        assert!(set_once(&config).contains("driver_stage"));
        assert!(!fold(&[]).properties(&config).contains_key("driver_stage"));
    }
}
