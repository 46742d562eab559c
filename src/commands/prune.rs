//! `auditsync prune --older-than AGE`.

use crate::cli::{GlobalArgs, PruneArgs};
use crate::error::{Error, Outcome};

pub async fn run(_args: PruneArgs, _global: &GlobalArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("`auditsync prune` is being written".into()))
}
