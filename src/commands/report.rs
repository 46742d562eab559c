//! `auditsync report apps|users|daily`.

use crate::cli::{GlobalArgs, ReportCommand};
use crate::error::{Error, Outcome};

pub async fn run(_cmd: ReportCommand, _global: &GlobalArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("`auditsync report` is being written".into()))
}
