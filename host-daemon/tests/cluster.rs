//! Beyond one relay: a session on a real moq-relay cluster (three relays meshed with
//! `--cluster-connect`). The host publishes to one relay, players watch and type through the
//! others, and when a relay dies, whoever used it (a viewer, or the host itself) moves to the
//! next relay of its `--url` list in the same process.

mod common;

use common::*;
use lantern_testkit::*;

#[test]
fn players_on_a_clusters_other_relays_play_type_and_outlive_a_relay() {
    let mut relays = Relay::cluster(3);
    let [a, b, c] = [0, 1, 2].map(|i| relays[i].url());
    let name = "mesh";
    // The host publishes to A, with B and C as its fallbacks.
    let Session {
        daemon,
        dir,
        log,
        token: grant,
    } = session(name, &["--url", &format!("{a},{b},{c}")]);
    let keys = || {
        app_log(&log)
            .iter()
            .filter(|e| e["kind"] == "key" && e["down"] == true)
            .count()
    };

    // A player types `key` through `edge` with the grant, and watches 60 pictures.
    let tap = |edge: &str, key: &str| {
        let script = write(dir.path(), "tap.txt", &format!("0 tap {key}\n"));
        let flags = [
            "--timeout",
            "30",
            "--input-script",
            &script,
            "--grant",
            &grant,
        ];
        view(edge, name, 60, &flags)
    };

    // A player on B and then one on C (with the same grant, one after the other) see the
    // stamped app and type into it through the cluster, sealed as on one relay.
    for (n, edge) in [&b, &c].into_iter().enumerate() {
        let stats = final_stats(&tap(edge, "KeyA").stderr);
        assert_eq!(stats["unstamped"], 0, "{stats}");
        wait_for("the key at the app", LONG, || keys() == n + 1);
    }

    // A player on B, with C as its fallback, watches while B dies and then while A, the
    // host's relay, dies: it plays on through C, where the host has moved, in one process.
    let mut viewer = spawn(
        bin("moq-sub"),
        &[
            "--url",
            &format!("{b},{c}"),
            "--name",
            name,
            "--frames",
            "1500",
            "--stats",
            "--timeout",
            "30",
        ],
    );
    let lines = Lines::read(&mut viewer);
    let shown = || {
        lines
            .stats_lines()
            .iter()
            .filter_map(|s| s["frames"].as_u64())
            .max()
            .unwrap_or(0)
    };
    wait_for("pictures through B", LONG, || shown() >= 120);
    relays[1].kill();
    let before = shown();
    wait_for("pictures through C", LONG, || shown() >= before + 120);
    relays[0].kill();
    let before = shown();
    wait_for("pictures once the host moved to C", LONG, || {
        shown() >= before + 120
    });
    let out = viewer.finish(LONG);
    assert!(out.status.success(), "{}", lines.stats_lines().len());
    let stats = lines.final_stats();
    assert_eq!(stats["frames"], 1500, "{stats}");
    assert!(stats["outages"].as_u64() >= Some(1), "{stats}");
    assert_eq!(stats["unstamped"], 0, "{stats}");

    // The host, on C now, still takes input: from a player on C.
    tap(&c, "KeyB");
    wait_for("the key after the moves", LONG, || keys() == 3);
    let out = daemon.interrupt(LONG);
    // A mesh may deliver a datagram twice (over two routes while a relay dies): the copy is
    // refused by the grant's replay window, which is its job. Nothing else is dropped, and
    // every key above reached the app once.
    let input = host_input(&out);
    for (reason, count) in input["dropped"].as_object().unwrap() {
        if reason != "replayed" {
            assert_eq!(count, 0, "dropped as {reason}: {input}");
        }
    }
    no_leftovers(name);
}
