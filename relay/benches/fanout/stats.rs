//! Statistics over rounds.

use super::*;

pub(crate) use crate::support::{median, min_max};

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
