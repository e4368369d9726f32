//! `wallet_pass_installed`: when the first pass was installed, and the latest pass's
//! platform.

use super::{earliest, Profile};
use crate::domain::lifecycle::{Data, Event};

pub fn apply(p: &mut Profile, e: &Event) {
    let Data::WalletPassInstalled { platform } = &e.data else {
        return;
    };
    earliest(&mut p.wallet_pass_installed_at, e.occurred_at);
    p.wallet_pass_platform = Some(platform.clone());
}

#[cfg(test)]
mod tests {
    use super::super::tests::event;
    use super::super::*;

    #[test]
    fn first_install_time_latest_platform() {
        let install = |id: &str, at, platform: &str| {
            event(
                id,
                at,
                Data::WalletPassInstalled {
                    platform: platform.into(),
                },
            )
        };
        let p = fold(&[install("b", 20, "google"), install("a", 10, "apple")]);
        assert_eq!(p.wallet_pass_installed_at, Some(10));
        assert_eq!(p.wallet_pass_platform.as_deref(), Some("google"));
    }
}
