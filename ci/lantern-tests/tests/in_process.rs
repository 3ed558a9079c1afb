//! moq-pub's library publishes the cube into an origin and moq-sub's library plays it from the
//! same origin, in one process: no relay, no sockets, no child processes. Fast feedback on
//! the whole media path (source, stamp, x264, hang broadcast, subscription, decode, stamp read).

use std::time::Duration;

use lantern_proto::stamp::Stamp;
use moq_pub::source::{Cube, Format, SyncEpoch};
use tokio_util::sync::CancellationToken;

fn sub_config(output: &std::path::Path, frames: u64) -> moq_sub::Config {
    moq_sub::Config {
        connect: lantern_net::ConnectArgs::default(),
        name: "cube".into(),
        output: Some(output.to_str().unwrap().into()),
        frames: Some(frames),
        stats: false,
        join: moq_sub::Join::Current,
        latency_log: None,
        audio_out: None,
        av_sync: false,
        feedback: false,
        timeout: Duration::from_secs(20),
        input: None,
        window: None,
        sdp: None,
        limits: Default::default(),
        record: None,
    }
}

fn pub_options(origin: moq_net::origin::Producer, frames: u64) -> moq_pub::Options {
    moq_pub::Options {
        name: "cube".into(),
        target: moq_pub::Target::Origin(origin),
        video: moq_pub::encode::VideoArgs {
            gop: Some(30),
            ..Default::default()
        },
        rate: moq_pub::rate::RateArgs::default(),
        feedback: None,
        frames: Some(frames),
        stamp: true,
        audio: moq_pub::audio::AudioArgs::default().settings().unwrap(),
        inbound: None,
        players: None,
        rtp: None,
        record: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cube_plays_in_process() {
    let origin = moq_tokio::origin::spawn();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let (events, _) = moq_sub::events();
    let player = {
        let (origin, config) = (origin.clone(), sub_config(&out, 60));
        let cancel = CancellationToken::new();
        tokio::spawn(async move { moq_sub::watch(&origin, &config, cancel, events).await })
    };
    let format = Format {
        width: 320,
        height: 240,
        fps: 60.0,
    };
    let cube = Box::new(Cube::new(format).unwrap().with_flash(SyncEpoch::now()));
    let cancel = CancellationToken::new();
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    let publishing = moq_pub::publish(pub_options(origin, 600), cube, None, cancel.clone(), events);
    let publisher = tokio::spawn(publishing);

    let outcome = player
        .await
        .unwrap()
        .map_err(|failed| failed.error)
        .unwrap();
    assert_eq!(outcome.summary.frames, 60);
    assert_eq!(outcome.summary.unstamped, 0);
    // The publisher stops cleanly when asked, with what it sent.
    cancel.cancel();
    let summary = publisher.await.unwrap().unwrap();
    assert!(summary.video.published >= 60, "{summary:?}");

    let file = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
    let mut reader = lantern_proto::y4m::Reader::new(file).unwrap();
    let mut frame = reader.new_frame();
    let mut numbers = Vec::new();
    while reader.read_frame(&mut frame.view_mut()).unwrap() {
        numbers.push(Stamp::read(&frame.image()).expect("stamped").frame);
    }
    assert_eq!(numbers.len(), 60);
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{numbers:?}");
}
