//! What the calls service's unit tests share: a tenant, a token sealer, and the fields a
//! refusal names.

use std::fmt::Debug;

use crate::{domain::TenantId, error::FieldViolation, store::Tenant, tokens::TokenSealer, Error};

pub fn tenant() -> Tenant {
    Tenant {
        id: TenantId::new_v7(),
        name: "tenant".to_owned(),
        time_zone: chrono_tz::UTC,
    }
}

pub fn sealer() -> TokenSealer {
    TokenSealer::new(b"test key").expect("a key of any length is accepted")
}

/// The fields an INVALID_ARGUMENT names, in order; panics on any other outcome.
pub fn refused_fields<T: Debug>(result: Result<T, Error>) -> Vec<String> {
    match result {
        Err(Error::InvalidArgument(violations)) => violations
            .into_iter()
            .map(|FieldViolation { field, .. }| field)
            .collect(),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}
