//! What `host-daemon ctl` needs besides the call itself ([`super::socket::call`]): the API
//! path of a session, and the `list` table.

use serde_json::Value;

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

/// `ctl list`: a line per session of `GET /sessions`'s answer.
pub fn table(answer: &Value) -> String {
    let line = |cells: [&str; 6]| {
        format!(
            "{:<20} {:<9} {:>11} {:>7} {:>8}  {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]
        )
    };
    let figure = |v: &Value| v.as_f64().map_or("-".into(), |f| format!("{f:.1}"));
    let mut out = line(["NAME", "STATE", "MODE", "FPS", "KBIT/S", "TARGET"]);
    for s in answer["sessions"].as_array().into_iter().flatten() {
        let video = &s["stats"]["video"];
        out += &line([
            s["name"].as_str().unwrap_or("?"),
            s["state"].as_str().unwrap_or("?"),
            &format!("{}x{}", s["width"], s["height"]),
            &figure(&video["fps"]),
            &figure(&video["kbps"]),
            s["target"].as_str().unwrap_or(""),
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
        let table = table(&answer);
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
