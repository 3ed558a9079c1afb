//! The browser viewer with a real session: headless Chromium plays host-daemon's test app
//! through a real moq-relay from the page (served as static files, pointed at the relay by
//! its query), and its keys, click, wheel, touch, captured (pointer-locked) mouse and gamepad
//! reach the app; a page without a grant is view-only and injects nothing.

mod common;

use common::*;
use lantern_testkit::*;

/// The page's query for a broadcast on a relay, with a grant (in the fragment) or without.
fn query(relay: &str, name: &str, grant: Option<&str>) -> String {
    let query = format!("?url={relay}&name={name}");
    match grant {
        Some(grant) => lantern_net::web::with_grant(&query, grant),
        None => query,
    }
}

#[test]
fn the_page_plays_a_session_through_a_relay_and_sends_its_input() {
    let relay = Relay::start();
    let url = relay.url();
    let name = "browser";
    let Session {
        daemon,
        dir: _dir,
        log,
        token,
    } = session(name, &["--url", &url]);
    let dist = web_dist();
    let dist = dist.to_str().unwrap();

    // Without a grant: the app plays, nothing goes back.
    let viewing = play_page(
        &query(&url, name, None),
        120,
        &["--serve", dist, "--keys", "KeyB", "--click"],
    );
    assert!(viewing.stamped >= 120, "{viewing}");
    assert!(viewing.input.is_none(), "{viewing}");

    // With one: keys, a click, a wheel notch, a tap, relative motion with the mouse
    // captured, and a gamepad reach the app.
    let seen = play_page(
        &query(&url, name, Some(&token)),
        120,
        &[
            "--serve",
            dist,
            "--keys",
            "KeyA,Digit1",
            "--click",
            "--wheel",
            "--tap",
            "320,180",
            "--lock",
            "40,-20",
            "--gamepad",
        ],
    );
    assert!(seen.stamped >= 120, "{seen}");
    assert!(
        seen.input.as_ref().is_some_and(|i| i.datagrams > 0),
        "{seen}"
    );
    // The grant was read from the fragment, then taken out of the address; no request
    // to the page's server carried it.
    let secret = token.split_once('~').unwrap().1;
    assert!(!seen.address.contains("grant"), "{seen}");
    let requests = seen.requests.as_ref().expect("the requests served");
    assert!(!requests.is_empty(), "{seen}");
    for request in requests {
        assert!(
            !request.contains(secret) && !request.contains("grant"),
            "{request}"
        );
    }
    let out = daemon.interrupt(LONG);
    let events = app_log(&log);
    let keys = presses(&events, "key", "key");
    // evdev: A is 30, 1 is 2; the grantless page's B (48) never arrives.
    assert_eq!(
        keys,
        [(30, true), (30, false), (2, true), (2, false)],
        "{events:?}"
    );
    // The click; the click on the page's capture button is the page's own and never goes.
    let buttons = presses(&events, "button", "button");
    assert_eq!(buttons, [(272, true), (272, false)], "{events:?}");
    // The tap, a touch point of its own (our compositor, `auto` here, takes touches as such).
    let touches: Vec<_> = events.iter().filter(|e| e["kind"] == "touch").collect();
    assert_eq!(touches.len(), 2, "{events:?}");
    assert_eq!(touches[0]["phase"], "down", "{events:?}");
    let at = (touches[0]["x"].as_f64(), touches[0]["y"].as_f64());
    let near_tap = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 2.0);
    assert!(near_tap(at.0, 320.0) && near_tap(at.1, 180.0), "{events:?}");
    assert_eq!(touches[1]["phase"], "up", "{events:?}");
    let wheel: Vec<_> = events.iter().filter(|e| e["kind"] == "wheel").collect();
    assert_eq!(wheel.len(), 1, "{events:?}");
    assert_eq!(wheel[0]["horizontal"], false, "{events:?}");
    assert_eq!(wheel[0]["notches"], 1, "{events:?}");
    // The click landed mid-picture, and the captured mouse moved the pointer on from there
    // by (40, -20) (the touch leaves the pointer where it was).
    let places = pointer_places(&events);
    let click = places
        .iter()
        .position(|&(x, y)| (x - 640.0).abs() < 2.0 && (y - 360.0).abs() < 2.0);
    assert!(click.is_some(), "{places:?}");
    assert_eq!(
        places.last().map(|&(x, y)| (x.round(), y.round())),
        Some((680.0, 340.0)),
        "{places:?}"
    );
    // The page with the grant reported its path; the adaptive bitrate followed it.
    let rates = rate_lines(&out.stderr);
    let rate = |key: &str| rates.iter().filter_map(|r| r[key].as_u64()).max();
    assert!(rate("reports") > Some(0), "no feedback from the page");
    // Its reports name the frames it has by the timestamps the host gave them.
    assert!(
        rate("newest_known") > Some(0),
        "the page's reports name no frame sent"
    );
    let input = host_input(&out);
    // Every datagram came from the page with the grant and was taken; the pad's state arrived
    // (pressed, then gone). It reaches a uinput pad only where /dev/uinput exists.
    assert_eq!(input["datagrams"], input["accepted"], "{input}");
    assert!(input["pad_states"].as_u64() >= Some(2), "{input}");
    for (reason, count) in input["dropped"].as_object().unwrap() {
        assert_eq!(count, 0, "dropped as {reason}: {input}");
    }
    no_leftovers(name);
}

/// A player's page behind a link that narrows and widens again (lantern-netem between it and
/// the relay): the session's bitrate follows the page's own reports (its queue measured in
/// the browser, without a shared clock) under the narrow link's rate, and up again after.
#[test]
fn the_bitrate_follows_a_players_page_down_its_narrowing_path_and_up_again() {
    let relay = Relay::start();
    let name = "narrowing";
    // 640x360 at 60 fps starts at 1106 kbit/s; the page's link gives 3 Mbit/s, then
    // 300 kbit/s, then 3 Mbit/s again.
    let Session {
        daemon,
        dir: _dir,
        log: _log,
        token,
    } = small_session(name, &relay);
    let path = Netem::start(relay.port, NARROWING_UP, NARROWING_DOWN);
    let dist = web_dist();
    let seen = play_page(
        &query(&path.url("anon"), name, Some(&token)),
        1500,
        &["--serve", dist.to_str().unwrap()],
    );
    assert_eq!(seen.status, "playing", "{seen}");
    let out = daemon.interrupt(LONG);
    let rates = rate_lines(&out.stderr);
    // Above the narrow link's rate, then under it, then above it again.
    assert_high_low_high(&rates, 900, 300);
    let totals = rates.last().unwrap();
    assert!(totals["decreases"].as_u64() >= Some(1), "{totals}");
    no_leftovers(name);
}

/// A player on another machine: the page comes from an https origin that is not localhost
/// (a static site, here `https://play.lantern.test` on a CA the browser trusts), points at
/// host-daemon's own `--listen` server by `?url=`, pins the server's certificate by the
/// fingerprint in its fragment, plays and sends keys; no request to the site carried the
/// grant. The server lets players only watch (`--max-spectators 0`): the page is one by the
/// grant's token it presents when it dials.
#[test]
fn the_page_from_another_https_origin_plays_and_sends_keys_by_fingerprint() {
    let addr = format!("127.0.0.1:{}", free_port());
    let name = "offsite";
    let Session {
        daemon,
        dir,
        log,
        token,
    } = session(name, &["--listen", &addr, "--max-spectators", "0"]);
    let fingerprint = http_get(&addr, "/certificate.sha256");
    let site = TestCa::new(dir.path(), "play.lantern.test");
    let page = format!("?url=http://{addr}/&name={name}#fp={fingerprint}");
    let page = lantern_net::web::with_grant(&page, &token);
    let dist = web_dist();
    let tls = format!("{},{}", site.cert.display(), site.key.display());
    let seen = play_page(
        &page,
        120,
        &[
            "--serve",
            dist.to_str().unwrap(),
            "--tls",
            &tls,
            "--host",
            "play.lantern.test",
            "--trust-ca",
            site.ca.to_str().unwrap(),
            "--keys",
            "KeyA",
        ],
    );
    assert!(seen.stamped >= 120, "{seen}");
    let address = &seen.address;
    assert!(address.starts_with("https://play.lantern.test:"), "{seen}");
    assert!(
        !address.contains("grant") && !address.contains("fp="),
        "{seen}"
    );
    let secret = token.split_once('~').unwrap().1;
    for request in seen.requests.as_ref().expect("the requests served") {
        assert!(
            !request.contains(secret) && !request.contains("grant"),
            "{request}"
        );
    }
    let out = daemon.interrupt(LONG);
    let keys = presses(&app_log(&log), "key", "key");
    assert_eq!(keys, [(30, true), (30, false)]);
    let input = host_input(&out);
    assert_eq!(input["datagrams"], input["accepted"], "{input}");
    no_leftovers(name);
}
