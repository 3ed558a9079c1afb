/// Every way a Lantern format can be malformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("y4m: {0}")]
    Y4m(String),
    #[error("y4m: unsupported colorspace {0:?} (only 4:2:0 8-bit is supported)")]
    Y4mColorspace(String),
    #[error("frame size {width}x{height} is invalid: {why}")]
    FrameSize {
        width: u32,
        height: u32,
        why: &'static str,
    },
    #[error("H.264: {0}")]
    H264(&'static str),
    #[error("OpusHead: {0}")]
    OpusHead(&'static str),
    /// A viewer's input message that is malformed or out of range.
    #[error("input: {0}")]
    Input(String),
    /// A viewer's feedback report that is malformed.
    #[error("feedback: {0}")]
    Feedback(String),
    #[error("i/o")]
    Io(#[from] std::io::Error),
}

/// An error and every cause below it, on one line: `what: why: …`. A cause whose text its
/// parent already ends with (errors that print their source) is not repeated. Text for a
/// person (an exit line, a control API's refusal, a stats field), never a cause passed on.
pub fn error_line(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        let text = err.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = err.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("says its cause: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn the_line_has_every_cause_once() {
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(error_line(&err), "outer: inner");
        let flat = std::io::Error::other("alone");
        assert_eq!(error_line(&flat), "alone");
        let repeats = Repeats(std::io::Error::other("inner"));
        assert_eq!(error_line(&repeats), "says its cause: inner");
    }
}
