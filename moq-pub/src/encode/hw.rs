//! Whether this host can encode on its GPU. NVIDIA's NVENC needs the GPU's device nodes, the
//! driver's CUDA and NVENC libraries (FFmpeg loads them when the encoder opens) and a
//! libavcodec built with `h264_nvenc`. VAAPI (Intel's and AMD's GPUs, through Mesa or
//! Intel's media driver) needs a DRM render node this user may open, libva and a libavcodec
//! built with `h264_vaapi`. What is missing is said in one line, so `--encoder nvenc|vaapi`
//! can refuse and `--encoder auto` can pass on to the next. Whether the GPU's driver then
//! really encodes is known only when the encoder opens (see `Encoder::new`).

use std::path::{Path, PathBuf};

/// What keeps NVENC from working here, if anything.
pub fn nvenc_missing() -> Option<String> {
    missing(Path::new("/dev"), loadable, in_ffmpeg("h264_nvenc"))
}

/// Whether this process's libavcodec has encoder `name`.
fn in_ffmpeg(name: &str) -> bool {
    let _ = lantern_media::ffmpeg::init();
    ffmpeg_next::encoder::find_by_name(name).is_some()
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

/// The render node VAAPI encodes on: `asked` (`--vaapi-device`), else the first of
/// `/dev/dri/renderD128…` this user may open; or what is missing.
pub fn vaapi_device(asked: Option<&Path>) -> Result<PathBuf, String> {
    vaapi(
        Path::new("/dev/dri"),
        asked,
        loadable,
        in_ffmpeg("h264_vaapi"),
    )
}

/// [`vaapi_device`] with the render nodes under `dri`, libraries `load` can load, and whether
/// libavcodec has the encoder.
fn vaapi(
    dri: &Path,
    asked: Option<&Path>,
    load: impl Fn(&str) -> bool,
    has_encoder: bool,
) -> Result<PathBuf, String> {
    let opens = |node: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(node)
            .map(drop)
    };
    let device = match asked {
        Some(node) => match opens(node) {
            Ok(()) => node.to_path_buf(),
            Err(e) => return Err(format!("cannot open {}: {e}", node.display())),
        },
        None => {
            let mut nodes: Vec<PathBuf> = std::fs::read_dir(dri)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| {
                            p.file_name()
                                .and_then(|n| n.to_str())
                                .and_then(|n| n.strip_prefix("renderD"))
                                .is_some_and(|n| n.parse::<u32>().is_ok())
                        })
                        .collect()
                })
                .unwrap_or_default();
            nodes.sort();
            // The first node that opens, else why the first would not.
            let mut refused = None;
            let opened = nodes.into_iter().find(|node| match opens(node) {
                Ok(()) => true,
                Err(e) => {
                    refused.get_or_insert(format!(
                        "cannot open {}: {e} (is this user in the render group?)",
                        node.display()
                    ));
                    false
                }
            });
            match (opened, refused) {
                (Some(node), _) => node,
                (None, Some(refused)) => return Err(refused),
                (None, None) => {
                    return Err(format!(
                        "no GPU render node here ({}/renderD128… is missing)",
                        dri.display()
                    ));
                }
            }
        }
    };
    for lib in ["libva.so.2", "libva-drm.so.2"] {
        if !load(lib) {
            return Err(format!(
                "{lib} cannot be loaded (install libva2 and libva-drm2)"
            ));
        }
    }
    if !has_encoder {
        return Err("this FFmpeg was built without h264_vaapi".into());
    }
    Ok(device)
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
    fn what_vaapi_lacks_is_named_in_order_and_the_first_node_that_opens_is_taken() {
        let dri = tempfile::tempdir().unwrap();
        let all = |_: &str| true;
        let said = vaapi(dri.path(), None, all, true).unwrap_err();
        assert!(said.starts_with("no GPU render node here"), "{said}");
        // Not render nodes: the primary node, and a name that only starts like one.
        for name in ["card0", "renderDx"] {
            std::fs::write(dri.path().join(name), "").unwrap();
        }
        assert!(vaapi(dri.path(), None, all, true).is_err());
        let (first, second) = (dri.path().join("renderD128"), dri.path().join("renderD129"));
        std::fs::write(&second, "").unwrap();
        std::fs::create_dir(&first).unwrap(); // a node that will not open
        assert_eq!(vaapi(dri.path(), None, all, true), Ok(second.clone()));
        std::fs::remove_file(&second).unwrap();
        let said = vaapi(dri.path(), None, all, true).unwrap_err();
        assert!(
            said.starts_with("cannot open ") && said.contains("renderD128"),
            "{said}"
        );
        assert!(said.contains("render group"), "{said}");
        std::fs::write(&second, "").unwrap();
        let no_drm = |lib: &str| lib != "libva-drm.so.2";
        let said = vaapi(dri.path(), None, no_drm, true).unwrap_err();
        assert!(said.contains("libva-drm.so.2"), "{said}");
        let said = vaapi(dri.path(), None, all, false).unwrap_err();
        assert!(said.contains("without h264_vaapi"), "{said}");
        // A node asked for is taken as it is, or refused with why.
        assert_eq!(vaapi(dri.path(), Some(&second), all, true), Ok(second));
        let gone = dri.path().join("renderD200");
        let said = vaapi(dri.path(), Some(&gone), all, true).unwrap_err();
        assert!(
            said.contains("renderD200") && !said.contains('\n'),
            "{said}"
        );
    }

    #[test]
    fn the_loader_is_asked_for_real() {
        assert!(loadable("libc.so.6"));
        assert!(!loadable("liblantern-no-such-library.so.1"));
        assert!(!loadable("nul\0inside"));
    }
}
