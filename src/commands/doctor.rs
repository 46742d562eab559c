//! `auditsync doctor`.

use crate::cli::GlobalArgs;
use crate::error::{Error, Outcome};

pub async fn run(_global: &GlobalArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("`auditsync doctor` is being written".into()))
}
