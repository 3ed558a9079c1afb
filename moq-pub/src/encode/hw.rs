//! Whether this host can encode on its GPU. NVIDIA's NVENC needs the GPU's device nodes, the
//! driver's CUDA and NVENC libraries (FFmpeg loads them when the encoder opens) and a
//! libavcodec built with `h264_nvenc`; what is missing is said in one line, so `--encoder
//! nvenc` can refuse and `--encoder auto` can pass on to x264. (VAAPI, Intel's and AMD's,
//! needs frames uploaded to its surfaces, which Lantern does not do yet.)

use std::path::Path;

/// What keeps NVENC from working here, if anything.
pub fn nvenc_missing() -> Option<String> {
    let has_encoder = {
        let _ = lantern_media::ffmpeg::init();
        ffmpeg_next::encoder::find_by_name("h264_nvenc").is_some()
    };
    missing(Path::new("/dev"), loadable, has_encoder)
}

/// The first thing NVENC lacks: device nodes under `dev`, libraries `load` cannot load, or
/// the encoder in libavcodec.
fn missing(dev: &Path, load: impl Fn(&str) -> bool, has_encoder: bool) -> Option<String> {
    let gpu = std::fs::read_dir(dev).ok().is_some_and(|nodes| {
        nodes.flatten().any(|node| {
            let name = node.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("nvidia")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    if !dev.join("nvidiactl").exists() || !gpu {
        return Some(format!(
            "no NVIDIA GPU here ({}/nvidiactl and {0}/nvidia0… are missing)",
            dev.display()
        ));
    }
    for lib in ["libcuda.so.1", "libnvidia-encode.so.1"] {
        if !load(lib) {
            return Some(format!(
                "the NVIDIA driver's {lib} cannot be loaded (is the driver installed?)"
            ));
        }
    }
    if !has_encoder {
        return Some("this FFmpeg was built without h264_nvenc".into());
    }
    None
}

/// Whether the dynamic loader finds and loads `lib` (then unloaded again).
fn loadable(lib: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(lib) else {
        return false;
    };
    // SAFETY: a valid C string; the handle, when there is one, is closed at once and nothing
    // from the library is used.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if handle.is_null() {
            return false;
        }
        libc::dlclose(handle);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_nvenc_lacks_is_named_in_order() {
        let dev = tempfile::tempdir().unwrap();
        let all = |_: &str| true;
        let said = missing(dev.path(), all, true).unwrap();
        assert!(said.starts_with("no NVIDIA GPU here"), "{said}");
        std::fs::write(dev.path().join("nvidiactl"), "").unwrap();
        std::fs::write(dev.path().join("nvidia-modeset"), "").unwrap();
        assert!(
            missing(dev.path(), all, true).is_some(),
            "a control node alone is no GPU"
        );
        std::fs::write(dev.path().join("nvidia0"), "").unwrap();
        let no_cuda = |lib: &str| lib != "libcuda.so.1";
        let said = missing(dev.path(), no_cuda, true).unwrap();
        assert!(said.contains("libcuda.so.1"), "{said}");
        let no_nvenc = |lib: &str| lib != "libnvidia-encode.so.1";
        let said = missing(dev.path(), no_nvenc, true).unwrap();
        assert!(said.contains("libnvidia-encode.so.1"), "{said}");
        let said = missing(dev.path(), all, false).unwrap();
        assert!(said.contains("without h264_nvenc"), "{said}");
        assert_eq!(missing(dev.path(), all, true), None);
    }

    #[test]
    fn the_loader_is_asked_for_real() {
        assert!(loadable("libc.so.6"));
        assert!(!loadable("liblantern-no-such-library.so.1"));
        assert!(!loadable("nul\0inside"));
    }
}
