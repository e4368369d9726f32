//! `otp_verified`: `otp_verified_at`, the first verification.

use super::{earliest, Profile};
use crate::domain::lifecycle::Event;

pub fn apply(p: &mut Profile, e: &Event) {
    earliest(&mut p.otp_verified_at, e.occurred_at);
}

#[cfg(test)]
mod tests {
    use super::super::tests::event;
    use super::super::*;

    #[test]
    fn the_first_verification_counts() {
        let p = fold(&[
            event("b", 20, Data::OtpVerified),
            event("a", 10, Data::OtpVerified),
        ]);
        assert_eq!(p.otp_verified_at, Some(10));
    }
}
