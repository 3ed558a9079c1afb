//! The stats lines as a person reads them: a few short lines a second (the window's overlay,
//! and `--stats-text`), and a summary of the whole run.

use super::line::{LatencyFrom, Line};

/// Milliseconds with one decimal, `-` when nothing was measured.
fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
}

/// The last second in a few short lines: rate, latency, where the time goes, input.
pub fn second(line: &Line) -> Vec<String> {
    let mut lines = vec![format!(
        "{:.0} fps  {} kbit/s  drops {}",
        line.fps.unwrap_or(0.0),
        line.kbps.map_or_else(|| "-".into(), |v| format!("{v:.0}")),
        line.drops,
    )];
    lines.push(latency(line));
    let present = (line.window.as_ref()).map_or_else(String::new, |w| {
        format!("  present {} ms", ms(w.present_ms_p50))
    });
    lines.push(format!(
        "decode {} ms{present}  rtt {} ms",
        ms(line.decode_ms_p50),
        ms(line.rtt_ms),
    ));
    if let Some(input) = &line.input {
        lines.push(format!(
            "input-to-photon {} ms (p99 {})",
            ms(input.input_to_photon_ms_p50),
            ms(input.input_to_photon_ms_p99)
        ));
    }
    if line.reconnecting == Some(true) {
        lines.push("the stream went away: reconnecting".into());
    }
    lines
}

/// Glass to glass when the pictures carry the stamp; any stream has timestamps.
fn latency(line: &Line) -> String {
    match line.latency_from {
        Some(LatencyFrom::Stamp) => format!(
            "glass-to-glass {} ms (p99 {})",
            ms(line.g2g_ms_p50),
            ms(line.g2g_ms_p99)
        ),
        Some(LatencyFrom::Pts) => format!(
            "pts-to-shown {} ms (p99 {})",
            ms(line.pts_to_shown_ms_p50),
            ms(line.pts_to_shown_ms_p99)
        ),
        None => "latency -".into(),
    }
}

/// The whole run (a closing line), in sentences.
pub fn summary(line: &Line) -> Vec<String> {
    let mut lines = vec![format!(
        "played {} frames in {:.1} s at {} kbit/s{}; {} dropped on the way",
        line.frames,
        line.seconds.unwrap_or(0.0),
        line.kbps.map_or_else(|| "-".into(), |v| format!("{v:.0}")),
        line.codec
            .as_deref()
            .map_or_else(String::new, |codec| format!(" ({codec})")),
        line.drops,
    )];
    if let Some(join) = line.join_ms {
        lines.push(format!(
            "first picture {join:.1} ms after the first frame came (joining)"
        ));
    }
    lines.push(format!("latency: {}", latency(line)));
    if let Some(delay) = &line.frame_delay {
        lines.push(format!(
            "frame delay p50 {} / p95 {} / max {} ms; {:.1} % of the source's frames shown; \
             {} stalls over 200 ms ({} over 500 ms)",
            ms(delay.frame_delay_ms_p50),
            ms(delay.frame_delay_ms_p95),
            ms(delay.frame_delay_ms_max),
            delay.shown_fraction * 100.0,
            delay.stalls,
            delay.long_stalls,
        ));
    }
    if let Some(audio) = &line.audio {
        let mut sound = format!(
            "sound: {} ms from capture to the output, {} gaps",
            ms(audio.audio_ms_p50),
            audio.audio_gaps
        );
        if let Some(run) = audio.run.as_ref().filter(|run| run.av_pairs > 0) {
            sound += &format!(
                "; A/V offset {} to {} ms (+ is sound late; beeps measured: {})",
                ms(run.av_offset_ms_min),
                ms(run.av_offset_ms_max),
                run.av_pairs
            );
        }
        lines.push(sound);
    }
    if let Some(input) = &line.input {
        lines.push(format!(
            "input-to-photon {} ms (p99 {}) over {} presses answered",
            ms(input.input_to_photon_ms_p50),
            ms(input.input_to_photon_ms_p99),
            input.input_to_photon_count
        ));
    }
    if line.outages > 0 {
        lines.push(format!(
            "the stream went away {} time(s), {:.1} s in all",
            line.outages,
            line.outage_s.unwrap_or(0.0)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(json: serde_json::Value) -> Line {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_second_says_what_the_stats_measured() {
        let lines = second(&line(json!({
            "role": "sub", "fps": 59.8, "kbps": 2400.0, "drops": 0, "latency_from": "stamp",
            "g2g_ms_p50": 19.7, "g2g_ms_p99": 22.3, "decode_ms_p50": 1.2,
            "present_ms_p50": 0.4, "present_ms_p99": 0.9, "window_replaced": 0, "rtt_ms": 0.3,
            "input_events": 3, "input_datagrams": 5, "input_unanswered": 0,
            "input_to_photon_count": 3, "input_to_photon_ms_p50": 33.3,
            "input_to_photon_ms_p99": 42.5,
        })));
        assert_eq!(lines[0], "60 fps  2400 kbit/s  drops 0");
        assert_eq!(lines[1], "glass-to-glass 19.7 ms (p99 22.3)");
        assert_eq!(lines[2], "decode 1.2 ms  present 0.4 ms  rtt 0.3 ms");
        assert_eq!(lines[3], "input-to-photon 33.3 ms (p99 42.5)");
        // Unstamped pictures fall back to timestamps, and nothing measured says so.
        let lines = second(&line(
            json!({"latency_from": "pts", "pts_to_shown_ms_p50": 5.0}),
        ));
        assert_eq!(lines[1], "pts-to-shown 5.0 ms (p99 -)");
        assert_eq!(lines.len(), 3);
        let lines = second(&line(json!({"reconnecting": true})));
        assert_eq!(lines.last().unwrap(), "the stream went away: reconnecting");
    }

    #[test]
    fn the_summary_speaks_of_what_was_measured_only() {
        let lines = summary(&line(json!({
            "role": "sub", "final": true, "seconds": 20.0, "join_ms": 180.5, "kbps": 2400.0, "frames": 1200,
            "drops": 2, "latency_from": "stamp", "g2g_ms_p50": 7.5, "g2g_ms_p99": 9.1,
            "codec": "avc3.42c01f", "outages": 1, "outage_s": 2.5,
            "frame_delay_ms_p50": 8.0, "frame_delay_ms_p95": 9.0, "frame_delay_ms_p99": 10.0,
            "frame_delay_ms_max": 2600.0, "shown_fraction": 0.95, "stalls": 1,
            "long_stalls": 1, "stalled_s": 2.5,
        })));
        assert_eq!(
            lines,
            [
                "played 1200 frames in 20.0 s at 2400 kbit/s (avc3.42c01f); 2 dropped on the way",
                "first picture 180.5 ms after the first frame came (joining)",
                "latency: glass-to-glass 7.5 ms (p99 9.1)",
                "frame delay p50 8.0 / p95 9.0 / max 2600.0 ms; 95.0 % of the source's frames \
                 shown; 1 stalls over 200 ms (1 over 500 ms)",
                "the stream went away 1 time(s), 2.5 s in all",
            ]
        );
    }
}
