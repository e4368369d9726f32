//! `user_signup` (the old `driver_signed_up`): the contact's name and phone (the latest
//! signup's), its email when the subject had none, and `signed_up_at` (the first signup).

use super::{earliest, Profile};
use crate::domain::lifecycle::{Data, Event};

pub fn apply(p: &mut Profile, e: &Event) {
    let Data::UserSignup {
        email,
        firstname,
        lastname,
        phone,
    } = &e.data
    else {
        return;
    };
    earliest(&mut p.signed_up_at, e.occurred_at);
    if e.subject.email.is_none() {
        if let Some(email) = email {
            p.email = Some(email.as_str().to_string());
        }
    }
    for (slot, value) in [
        (&mut p.firstname, firstname),
        (&mut p.lastname, lastname),
        (&mut p.phone, phone),
    ] {
        if value.is_some() {
            slot.clone_from(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::event;
    use super::super::*;
    use crate::domain::contact::Email;

    #[test]
    fn the_first_signup_dates_it_and_the_latest_names_it() {
        let signup = |id: &str, at, name: &str| {
            event(
                id,
                at,
                Data::UserSignup {
                    email: Some(Email::parse("ann@example.com").unwrap()),
                    firstname: Some(name.into()),
                    lastname: None,
                    phone: None,
                },
            )
        };
        let p = fold(&[signup("b", 20, "Anna"), signup("a", 10, "Ann")]);
        assert_eq!(p.signed_up_at, Some(10));
        assert_eq!(p.firstname.as_deref(), Some("Anna"));
        assert_eq!(p.email.as_deref(), Some("ann@example.com"));
    }
}
