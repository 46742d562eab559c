//! Nothing the service sends can take unbounded memory: a blob is read as a stream and refused past
//! `[sync] blob_size_limit_mib` after decompression (a gzip bomb, an oversized blob, an endless
//! chunked body), the run goes on and stores every other blob; listing pages and token answers have
//! small bounds of their own. Memory is not measured here; the limit is set low so crossing it is
//! cheap, and the simulator generates each huge body as it sends it, so it stops when auditsync does.

use std::collections::BTreeMap;

use auditsync_simulator::{Faults, HugeBody};
use chrono::{TimeDelta, Utc};

use crate::common::{TestEnv, json, stored_ids, truth};

const GIB: u64 = 1 << 30;

fn small_tenant(gzip: bool) -> TestEnv {
    let env = TestEnv::with(|s| {
        s.hours = 4;
        s.blobs_per_hour = 4;
        s.records_per_blob = 20;
        s.launch_share = 0.5;
        s.gzip = gzip;
    });
    env.write_config(
        "[sync]\nstart_time_interval = 3\nstart_time_unit = \"hour\"\nblob_size_limit_mib = 1\n",
    );
    env.run(&["subscribe", "start"]).assert_code(0);
    env
}

#[test]
fn a_blob_too_large_after_decompression_fails_alone_and_the_run_goes_on() {
    for gzip in [false, true] {
        let env = small_tenant(gzip);
        let since = Utc::now() - TimeDelta::minutes(150);
        let recent: Vec<String> = env
            .sim
            .blobs("Audit.General")
            .into_iter()
            .filter(|b| b.created > since)
            .map(|b| b.content_id)
            .collect();
        assert!(recent.len() >= 6, "{recent:?}");
        let huge = BTreeMap::from([
            // 2 GiB inflated from under 3 MB.
            (recent[0].clone(), HugeBody::GzipBomb { inflated: 2 * GIB }),
            // 2 GiB as it is, with its Content-Length.
            (recent[2].clone(), HugeBody::Oversized { bytes: 2 * GIB }),
            // Never ends.
            (recent[4].clone(), HugeBody::Endless),
        ]);
        env.sim.set_faults(Faults {
            huge_blobs: huge.clone(),
            ..Faults::default()
        });
        let first = env.run(&["sync", "--json"]);
        first.assert_code(1);
        let s = json(&first);
        assert_eq!(s["outcome"], "incomplete", "{}", first.all());
        let failed = s["failed_blobs"].as_array().unwrap();
        let mut ids: Vec<&str> = failed
            .iter()
            .map(|f| f["content_id"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        let want: Vec<&str> = huge.keys().map(String::as_str).collect();
        assert_eq!(ids, want, "only the huge blobs failed\n{}", first.all());
        for f in failed {
            let error = f["error"].as_str().unwrap();
            assert!(
                error.contains("larger than 1 MiB after decompression")
                    && error.contains("blob_size_limit_mib"),
                "{error}"
            );
        }
        for id in huge.keys() {
            first.assert_stderr(id);
        }
        let listed = s["blobs_listed"].as_u64().unwrap();
        assert_eq!(
            s["blobs_fetched"].as_u64().unwrap(),
            listed - 3,
            "{}",
            first.all()
        );

        // The next run, with the service well again, fetches exactly those three: the others were
        // stored by the first.
        env.sim.set_faults(Faults::default());
        let second = env.run(&["sync", "--json"]);
        second.assert_code(0);
        let s = json(&second);
        assert_eq!(s["blobs_fetched"], 3, "{}", second.all());
        assert_eq!(stored_ids(&env), truth(&env, &s));
    }
}

#[test]
fn listing_pages_and_token_answers_are_bounded_too() {
    let env = small_tenant(false);
    env.sim.set_faults(Faults {
        huge_listing: Some(HugeBody::Endless),
        ..Faults::default()
    });
    // One segment is enough (each reads 16 MiB before it stops).
    let run = env.run_with(
        &["sync", "--json"],
        &[("AUDITSYNC_SYNC_START_TIME_INTERVAL", "1")],
    );
    run.assert_code(1);
    let s = json(&run);
    let unlisted = s["unlisted_segments"].as_array().unwrap();
    assert!(!unlisted.is_empty(), "{}", run.all());
    for u in unlisted {
        let error = u["error"].as_str().unwrap();
        assert!(error.contains("larger than 16 MiB"), "{error}");
    }

    for huge in [
        HugeBody::Endless,
        HugeBody::GzipBomb { inflated: 2 * GIB },
        HugeBody::Oversized { bytes: 2 * GIB },
    ] {
        env.sim.set_faults(Faults {
            huge_token: Some(huge.clone()),
            ..Faults::default()
        });
        env.run(&["subscribe", "list"])
            .assert_code(1)
            .assert_stderr("token endpoint")
            .assert_stderr("larger than 1 MiB");
    }
}
