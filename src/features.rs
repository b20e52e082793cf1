//! The features the shipped bot registers: routes beyond the built-in ones, and job kinds.

use crate::app::Extensions;

pub fn extensions() -> Extensions {
    Extensions::default()
}
