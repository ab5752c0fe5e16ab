//! Reading a file the node is handed (a module, a manifest) without trusting it: only a
//! regular file (a FIFO or a device such as `/dev/zero` would block or never end), and no
//! more than a limit, however large the file is or grows while it is read.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest module file the node reads (64 MiB).
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// The largest manifest the node reads (4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A regular file's bytes, if it holds at most `limit`. Blocking: async code runs it with
/// `spawn_blocking` (see [`read_regular_async`]).
pub(crate) fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    // Without blocking: opening a FIFO for reading waits for a writer, for ever if none
    // comes, before its type could be checked. A regular file reads the same either way.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("larger than {limit} bytes"),
        )
    };
    // The open file's type and size, not the path's: the path may change in between.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > limit {
        return Err(too_large());
    }
    // Sized for what the file holds now; `take` still stops one that grows while read.
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_regular`], off the async workers.
pub(crate) async fn read_regular_async(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || read_regular(&owned, limit))
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_within_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.wasm");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_regular(&file, 10).unwrap(), b"0123456789");
        let e = read_regular(&file, 9).unwrap_err();
        assert!(e.to_string().contains("larger than 9 bytes"), "{e}");
        let e = read_regular(dir.path(), 10).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("m.wasm");
        let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let (done, read) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(read_regular(&fifo, 10).map_err(|e| e.to_string())));
        let e = read
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading a FIFO waited for a writer")
            .unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
