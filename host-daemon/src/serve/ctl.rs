//! What `host-daemon ctl` needs besides the call itself ([`super::socket::call`]): the API
//! path of a session, the answers read typed, and the `list` table.

use serde::Deserialize;

use super::{SessionStats, State};

/// `GET /sessions`' answer.
#[derive(Debug, Deserialize)]
pub struct Sessions {
    pub sessions: Vec<Listed>,
}

/// What ctl reads of a session ([`super::Info`], which the daemon writes; a test checks one
/// reads as the other).
#[derive(Debug, Deserialize)]
pub struct Listed {
    pub name: String,
    pub state: State,
    pub width: u32,
    pub height: u32,
    /// The relay (token left out), or `listen ADDR`.
    pub target: String,
    /// The last second's capture and encoder figures, while it runs.
    #[serde(default)]
    pub stats: Option<SessionStats>,
}

impl Listed {
    /// The direct server's address, for a session that serves viewers itself.
    pub fn listening(&self) -> Option<&str> {
        self.target.strip_prefix("listen ")
    }
}

/// A refusal's answer: `{"error": "…"}` with a 4xx or 5xx status.
#[derive(Debug, serde::Serialize, Deserialize)]
pub struct Refusal {
    pub error: String,
}

/// `/sessions/NAME`, the name percent-encoded as one path segment.
pub fn session_path(name: &str) -> String {
    format!("/sessions/{}", segment(name))
}

/// `text` as one path segment, percent-encoded (a `/` in it stays inside the segment).
pub fn segment(text: &str) -> String {
    let mut url = url::Url::parse("http://host-daemon/").expect("a constant URL");
    url.path_segments_mut()
        .expect("an http URL has path segments")
        .pop()
        .push(text);
    url.path()[1..].to_string()
}

/// `ctl list`: a line per session.
pub fn table(sessions: &[Listed]) -> String {
    let line = |cells: [&str; 6]| {
        format!(
            "{:<20} {:<9} {:>11} {:>7} {:>8}  {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]
        )
    };
    let figure = |v: Option<f64>| v.map_or("-".into(), |f| format!("{f:.1}"));
    let mut out = line(["NAME", "STATE", "MODE", "FPS", "KBIT/S", "TARGET"]);
    for s in sessions {
        let state = match s.state {
            State::Starting => "starting",
            State::Running => "running",
            State::Ended => "ended",
        };
        out += &line([
            &s.name,
            state,
            &format!("{}x{}", s.width, s.height),
            &figure(s.stats.as_ref().map(|s| s.video.fps)),
            &figure(s.stats.as_ref().map(|s| s.video.kbps)),
            &s.target,
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_path_segment() {
        assert_eq!(session_path("game"), "/sessions/game");
        assert_eq!(session_path("a b/c?d"), "/sessions/a%20b%2Fc%3Fd");
    }

    #[test]
    fn the_table_has_a_line_per_session() {
        let answer = serde_json::json!({ "sessions": [
            { "name": "a", "state": "running", "width": 640, "height": 360,
              "target": "listen 127.0.0.1:1", "stats": { "video": { "fps": 60.04, "kbps": 1000.0 } } },
            { "name": "b", "state": "starting", "width": 1280, "height": 720, "target": "https://r/x" },
        ]});
        let answer: Sessions = serde_json::from_value(answer).unwrap();
        let table = table(&answer.sessions);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME"));
        assert!(
            lines[1].contains("640x360")
                && lines[1].contains("60.0")
                && lines[1].contains("1000.0")
        );
        assert!(
            lines[2].contains("starting") && lines[2].contains(" -  "),
            "{table}"
        );
    }
}
