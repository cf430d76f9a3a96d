//! The ONNX Runtime library that `make setup` unpacks from the pinned PyPI wheel loads through
//! ort's load-dynamic, and a configured path that does not exist is an error naming it.

use std::path::Path;

#[test]
fn configured_missing_library_is_named() {
    let missing = Path::new("/nonexistent/libonnxruntime.so");
    // `init` remembers its first outcome for the process, so the failure path is checked through
    // the search list it would use: a configured path is the only candidate.
    assert_eq!(
        avsepd::model::runtime::candidates(Some(missing)),
        vec![missing.to_path_buf()]
    );
}

#[test]
fn setup_library_loads_and_reports_its_version() {
    let path = avsepd::model::runtime::init(None).expect("make setup provides libonnxruntime");
    assert!(
        path.to_string_lossy().contains("1.32.0"),
        "{}",
        path.display()
    );
    let info = avsepd::model::runtime::build_info();
    assert!(
        info.starts_with("ORT Build Info") && info.contains("build type=Release"),
        "unexpected build info: {info}"
    );
}
