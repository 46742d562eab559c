//! `auditsync import FILE...`.

use crate::cli::{GlobalArgs, ImportArgs};
use crate::error::{Error, Outcome};

pub async fn run(_args: ImportArgs, _global: &GlobalArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("`auditsync import` is being written".into()))
}
