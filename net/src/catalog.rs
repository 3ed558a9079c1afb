//! Reading a broadcast's hang catalog, checked before hang parses it.
//!
//! hang 0.21.19's codec-string parsers count bytes and slice at char boundaries, so a codec
//! such as `avc3.4Ο020` panics inside them (found by `ci/fuzz catalog`; kept in
//! fuzz/regressions/catalog). A catalog comes from whoever publishes, so a viewer reads the
//! catalog track's JSON snapshots as plain JSON (moq-json, which moq-mux's consumer is built
//! on), refuses codec strings that are not short ASCII, and only then lets hang deserialize.
//! It lives here, below the media stacks, so the fuzz target reaches it without them.

use hang::catalog::Catalog;
use serde_json::Value;

use crate::Error;

/// The longest codec string accepted; real ones (`avc1.640028`, `av01.0.08M.08`) are short.
const MAX_CODEC: usize = 64;

/// The catalog track of a broadcast, as a stream of checked snapshots.
pub struct CatalogReader {
    snapshots: moq_json::snapshot::Consumer<Value>,
}

impl CatalogReader {
    /// Subscribe to `broadcast`'s hang catalog track.
    pub async fn subscribe(broadcast: &moq_net::broadcast::Consumer) -> Result<Self, Error> {
        let track = broadcast
            .track(Catalog::DEFAULT_NAME)
            .map_err(Error::CatalogTrack)?
            .subscribe(Catalog::default_subscription())
            .await
            .map_err(Error::CatalogTrack)?;
        let config = moq_json::snapshot::consumer::Config::default();
        Ok(Self {
            snapshots: moq_json::snapshot::Consumer::new(track, config),
        })
    }

    /// The next catalog the publisher sent; `None` when the track ends.
    pub async fn next(&mut self) -> Result<Option<Catalog>, Error> {
        match self.snapshots.next().await.map_err(Error::CatalogRead)? {
            Some(value) => Ok(Some(parse(value)?)),
            None => Ok(None),
        }
    }
}

/// Check one catalog snapshot and parse it with hang.
pub fn parse(value: Value) -> Result<Catalog, Error> {
    check_codecs(&value)?;
    let catalog: Catalog = serde_json::from_value(value).map_err(Error::CatalogJson)?;
    catalog
        .check_renditions()
        .map_err(Error::CatalogRenditions)?;
    Ok(catalog)
}

/// Every `codec` string anywhere in the catalog is short printable ASCII.
fn check_codecs(value: &Value) -> Result<(), Error> {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if let (Some(codec), "codec") = (value.as_str(), key.as_str())
                    && (codec.len() > MAX_CODEC || !codec.bytes().all(|b| b.is_ascii_graphic()))
                {
                    let shown = codec.chars().take(MAX_CODEC).collect();
                    return Err(Error::CatalogCodec(shown));
                }
                check_codecs(value)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_codecs),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_strings_hang_cannot_parse_are_refused_before_it_sees_them() {
        let catalog = |codec: &str| {
            serde_json::json!({"video": {"renditions": {"v": {
                "codec": codec, "codedWidth": 640, "codedHeight": 360,
                "container": {"kind": "legacy"}}}}})
        };
        let parsed = parse(catalog("avc3.42c020")).unwrap();
        assert_eq!(parsed.video.renditions.len(), 1);
        // hang 0.21.19 panics on this one (a six-byte part with a two-byte character).
        let err = parse(catalog("avc3.4\u{39f}020")).unwrap_err().to_string();
        assert!(err.contains("not a codec string"), "{err}");
        assert!(parse(catalog(&"a".repeat(65))).is_err());
    }
}
