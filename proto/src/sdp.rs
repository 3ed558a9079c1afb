//! The little of SDP that Lantern reads itself (libavformat reads the rest): which ports a
//! session's media arrive on, so a receiver can say which one is taken before it starts.

/// The ports of the SDP's media sections (`m=video 5004 RTP/AVP 96`, or `5006/2` for two):
/// each, and the one above it (its RTCP), must be free to receive on.
pub fn media_ports(sdp: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for line in sdp.lines().filter(|l| l.starts_with("m=")) {
        let port = line
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| format!("bad media line \"{}\"", shown(line)))?;
        ports.push(port);
    }
    if ports.is_empty() {
        return Err("not an SDP with media (no m= line)".into());
    }
    Ok(ports)
}

/// A line as an error quotes it: at most 80 characters, control characters as `?`.
fn shown(line: &str) -> String {
    let printable = |c: char| if c.is_control() { '?' } else { c };
    line.chars().take(80).map(printable).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ports_come_from_the_m_lines() {
        let sdp =
            "v=0\r\nm=video 5004 RTP/AVP 96\r\nc=IN IP4 127.0.0.1\r\nm=audio 5006/2 RTP/AVP 97\r\n";
        assert_eq!(media_ports(sdp), Ok(vec![5004, 5006]));
        assert!(media_ports("v=0\r\n").is_err());
        assert!(media_ports("m=video port RTP/AVP 96").is_err());
        let long = format!("m=video {}", "x".repeat(10_000));
        assert!(media_ports(&long).unwrap_err().len() < 120);
    }
}
