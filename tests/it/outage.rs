//! What the network and a failing service do to a sync: malformed paging signals, a service that
//! answers every request with the same failure, one that trickles, and the run's deadline. Each run
//! must end incomplete (exit 1), say what the service answered, and say it in a few lines.

use auditsync_simulator::Faults;

use crate::common::{TestEnv, json};

/// A subscribed tenant with small pages, so every segment of the default day needs several.
fn paged(extra: &str) -> TestEnv {
    let env = TestEnv::with(|s| s.page_size = 2);
    env.write_config(extra);
    env.run(&["subscribe", "start"]).assert_code(0);
    env
}

#[test]
fn a_next_page_link_that_cannot_be_followed_leaves_the_segment_incomplete() {
    let env = paged("");
    for bad in [
        vec![0xff, 0xfe],
        b"https://localhost/\xe9".to_vec(),
        Vec::new(),
        b"not a url".to_vec(),
        b"nextPage=20261128".to_vec(),
    ] {
        env.sim.set_faults(Faults {
            bad_next_page: Some(bad.clone()),
            ..Default::default()
        });
        let run = env.run(&["sync", "--json"]);
        run.assert_code(1).assert_stderr("NextPageUri");
        let s = json(&run);
        assert_eq!(s["outcome"], "incomplete", "{bad:?}\n{}", run.all());
        assert_eq!(s["segments_complete"], 0, "{bad:?}");
        assert!(
            !s["unlisted_segments"].as_array().unwrap().is_empty(),
            "{bad:?}"
        );
        assert_eq!(s["watermark"], serde_json::Value::Null, "{bad:?}");
    }
}
