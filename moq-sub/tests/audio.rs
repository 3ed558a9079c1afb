//! Audio end to end: a private PipeWire daemon → moq-pub → a real moq-relay → moq-sub, and
//! the A/V sync test signal. Checked from the decoded sound (a WAV moq-sub writes).

use std::time::Duration;

use lantern_proto::audio::Wav;
use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(60);

/// These tests check a real-time stream's sound for gaps and pitch: run in parallel on a
/// 2-core machine they starve each other's players and see gaps that are theirs, not
/// Lantern's. One at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Subscribe with `--audio-out`, then publish with `pub_args`; the subscriber's closing stats,
/// the publisher's closing audio stats, and the first channel of what the subscriber wrote.
fn play_audio(
    relay: &Relay,
    name: &str,
    frames: &str,
    pub_args: &[&str],
    env: &[(String, String)],
) -> (serde_json::Value, serde_json::Value, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let (sub, publisher) = play_into(relay, name, frames, pub_args, wav.to_str().unwrap(), env);
    (sub, publisher, read_wav(&wav))
}

/// Subscribe with `--audio-out OUT`, then publish with `pub_args`, both with `env`; the
/// subscriber's closing stats and the publisher's closing audio stats.
fn play_into(
    relay: &Relay,
    name: &str,
    frames: &str,
    pub_args: &[&str],
    out: &str,
    env: &[(String, String)],
) -> (serde_json::Value, serde_json::Value) {
    let url = relay.url();
    let sub = spawn_env(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            name,
            "--frames",
            frames,
            "--stats",
            "--timeout",
            "20",
            "--audio-out",
            out,
        ],
        env,
    );
    // As e2e's `play`: the publisher goes on until the subscriber has its frames (a loaded
    // machine's viewer may skip many), then stops as Ctrl-C would; the bound is a backstop.
    let most = (frames.parse::<u64>().unwrap() * 20).to_string();
    let mut args = vec!["--url", &url, "--name", name, "--frames", &most, "--stats"];
    args.extend_from_slice(pub_args);
    let publisher = spawn_env(bin("moq-pub"), &args, env);
    let sub = sub.finish(LONG);
    let stderr = String::from_utf8_lossy(&sub.stderr);
    assert!(sub.status.success(), "moq-sub failed:\n{stderr}");
    let publisher = publisher.interrupt_clean("moq-pub", LONG);
    let pub_audio = String::from_utf8_lossy(&publisher.stderr)
        .lines()
        .find(|l| l.contains("\"pub-audio\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_default();
    (final_stats(&sub.stderr), pub_audio)
}

#[test]
fn a_tone_played_into_pipewire_arrives_whole() {
    let _serial = one_at_a_time();
    let pw = PipeWire::start();
    pw.null_sink("lantern-test");
    // 440 Hz at a quarter of full scale, long enough to outlast the run.
    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("tone.wav");
    let mut wav = Wav::new(std::fs::File::create(&tone).unwrap(), 2).unwrap();
    let samples: Vec<f32> = (0..48_000 * 30)
        .flat_map(|n| {
            let s = 0.25 * (n as f32 / 48_000.0 * 440.0 * std::f32::consts::TAU).sin();
            [s, s]
        })
        .collect();
    wav.write(&samples).unwrap();
    wav.finish().unwrap();
    let _player = pw.play(&tone, "lantern-test");

    let relay = Relay::start();
    let (stats, pub_audio, out) = play_audio(
        &relay,
        "tone",
        "300",
        &["--audio", "pipewire:lantern-test"],
        pw.env(),
    );
    assert!(stats["audio_frames"].as_u64().unwrap() > 200, "{stats}");
    let mono = out;
    let start = mono
        .iter()
        .position(|x| x.abs() > 0.05)
        .expect("no tone in the received audio");
    // Skip the first and last 100 ms (the player's fade-in, the subscriber's cut).
    let tone = &mono[start + 4_800..mono.len().saturating_sub(4_800)];
    assert!(tone.len() > 48_000, "only {} samples of tone", tone.len());
    let (_, rms) = tone_of(tone);
    let hz = pitch_of(tone);
    assert!((hz - 440.0).abs() < 5.0, "frequency {hz:.1} Hz");
    // 0.25 peak is 0.177 RMS; PipeWire's mixing and Opus may shade it a little.
    assert!((0.12..0.23).contains(&rms), "level {rms:.3} RMS");
    // Silence inside the tone is audio that went missing: it must all be in the stats, either
    // the publisher's (lost in capture) or the subscriber's (lost on the way).
    let mut silent = 0usize;
    let mut run = 0usize;
    for x in tone {
        if x.abs() < 1e-3 {
            run += 1;
        } else {
            if run >= 48 {
                silent += run;
            }
            run = 0;
        }
    }
    let missing_ms =
        stats["audio_missing_ms"].as_f64().unwrap() + pub_audio["lost_ms"].as_f64().unwrap();
    assert!(
        silent as f64 / 48.0 <= missing_ms + 2.0,
        "{silent} silent samples inside the tone, {missing_ms} ms reported missing ({pub_audio})"
    );
}

#[test]
fn beeps_and_flashes_pair_up_through_a_relay() {
    let _serial = one_at_a_time();
    let relay = Relay::start();
    // 14 s: the beeps at 4, 8 and 12 s follow quiet, so at least two pairs are measured.
    let (stats, _, out) = play_audio(&relay, "sync", "840", &["--audio", "testsrc"], &[]);
    let offsets: Vec<f64> = stats["av_offsets_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_f64().unwrap())
        .collect();
    assert!(offsets.len() >= 2, "{stats}");
    // Not a timing threshold: a broken pairing or timeline is off by a frame or a period;
    // the figure itself is measured in the issue notes, not asserted on a shared machine.
    for offset in &offsets {
        assert!(offset.abs() < 200.0, "A/V offset {offset} ms: {stats}");
    }
    // The first beep that follows quiet (the stream may start in the middle of one): 50 ms
    // of it, well inside its 100.
    let mono = out;
    let mut onsets = lantern_proto::sync::OnsetDetector::new(48_000);
    let onset = mono
        .iter()
        .position(|&x| onsets.push(x))
        .expect("no beep onset in the received audio");
    let (hz, _) = tone_of(&mono[onset..(onset + 2_400).min(mono.len())]);
    assert!((hz - 1000.0).abs() < 20.0, "beep at {hz:.1} Hz");
}

#[test]
fn moq_sub_plays_into_a_pipewire_sink_in_step_with_the_picture() {
    let _serial = one_at_a_time();
    let pw = PipeWire::start();
    pw.null_sink("lantern-speaker");
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    let recorder = pw.record("lantern-speaker", &heard);
    let relay = Relay::start();
    let (stats, _) = play_into(
        &relay,
        "speaker",
        "600",
        &["--audio", "testsrc"],
        "pipewire:lantern-speaker",
        pw.env(),
    );
    recorder.interrupt(Duration::from_secs(10));
    // What the speaker played: the test source's 1 kHz beep.
    let mono = read_wav(&heard);
    let mut onsets = lantern_proto::sync::OnsetDetector::new(48_000);
    let onset = mono
        .iter()
        .position(|&x| onsets.push(x))
        .expect("no beep reached the sink");
    let (hz, _) = tone_of(&mono[onset..(onset + 2_400).min(mono.len())]);
    assert!((hz - 1000.0).abs() < 20.0, "beep at {hz:.1} Hz");
    // Lip sync holds pictures for their sound; the pairs show it (loosely: no timing here).
    assert!(stats["audio_underruns"].is_u64(), "{stats}");
    for offset in stats["av_offsets_ms"].as_array().unwrap() {
        assert!(offset.as_f64().unwrap().abs() < 200.0, "{stats}");
    }
}

#[test]
fn lantern_audio_is_understood_by_moq_export() {
    let _serial = one_at_a_time();
    let relay = Relay::start();
    let publisher = spawn(
        bin("moq-pub"),
        &[
            "--url",
            &relay.url(),
            "--name",
            "av",
            "--frames",
            "600",
            "--audio",
            "testsrc",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("out.mp4");
    let shell = format!(
        "timeout 4 {} --connect {} --broadcast av export fmp4 > {} 2>/dev/null; true",
        tool("moq"),
        relay.url(),
        mp4.display()
    );
    std::process::Command::new("sh")
        .args(["-c", &shell])
        .status()
        .unwrap();
    drop(publisher);
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "csv=p=0",
        ])
        .arg(&mp4)
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&probe.stdout);
    assert!(streams.contains("opus,48000,2"), "ffprobe: {streams}");
    assert!(streams.contains("h264"), "ffprobe: {streams}");
}

#[test]
fn pipewire_problems_are_clear_errors() {
    let nowhere = tempfile::tempdir().unwrap();
    let env = [(
        "XDG_RUNTIME_DIR".to_string(),
        nowhere.path().to_str().unwrap().to_string(),
    )];
    let relay = Relay::start();
    let url = relay.url();
    let check = |args: &[&str], env: &[(String, String)], needle: &str| {
        let out = spawn_env(bin("moq-pub"), args, env).finish(Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        // 1 for a failed run, 2 for a flag clap refused: either way an exit, not a signal.
        assert!(matches!(out.status.code(), Some(1 | 2)), "{stderr}");
        assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    // Asked for explicitly, a missing daemon stops the stream rather than muting it.
    check(
        &["--url", &url, "--frames", "30", "--audio", "pipewire"],
        &env,
        "cannot connect to the PipeWire daemon",
    );
    let pw = PipeWire::start();
    check(
        &[
            "--url",
            &url,
            "--frames",
            "30",
            "--audio",
            "pipewire:no-such-node",
        ],
        pw.env(),
        "\"no-such-node\"",
    );
    check(
        &["--url", &url, "--audio-frame-ms", "7"],
        &[],
        "2.5, 5, 10 or 20",
    );
    check(
        &["--url", &url, "--audio", "alsa"],
        &[],
        "unknown audio source",
    );
}
