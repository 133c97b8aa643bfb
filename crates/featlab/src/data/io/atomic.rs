//! Atomic file replacement: write a sibling temporary file, fsync it, rename it over
//! the destination.

use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent writers inside one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically.
///
/// The bytes go to a temporary file in the same directory (`.NAME.tmp-PID-N`), which is
/// flushed to disk (`fsync`) and then renamed over `path`; on Unix the directory is
/// fsynced afterwards too (best effort). Readers therefore see either the old content
/// or the complete new content, never a partial file, even if the process dies midway.
/// Missing parent directories are created. On failure the temporary file is removed
/// and the destination is left untouched.
///
/// The new file gets default permissions (0666 minus the umask), not those of the file
/// it replaces; if `path` is a symbolic link, the link itself is replaced.
///
/// Errors: [`Error::Io`] naming the path and the step that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().ok_or_else(|| {
        Error::io(
            "write",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;

    let (tmp, mut file) = create_temp(&dir, name.to_string_lossy().as_ref())?;
    let result = (|| {
        file.write_all(bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| Error::io("replace", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_dir(&dir);
    Ok(())
}

/// Create a fresh temporary file next to the destination (never reusing an existing
/// name, so two writers cannot clobber each other's temporary files).
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{pid}-{n}"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some((tmp, e)),
            Err(e) => return Err(Error::io("create temporary file", &tmp, e)),
        }
    }
    let (tmp, e) = last_err.expect("the loop ran at least once");
    Err(Error::io("create temporary file", tmp, e))
}

/// Flush the directory entry of the rename to disk where the OS supports it.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("featlab-io-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn atomic_write_creates_parents_and_replaces() {
        let dir = scratch("replace");
        let p = dir.join("a/b/out.bin");
        write_atomic(&p, b"first version, rather long").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"first version, rather long");
        write_atomic(&p, b"second").unwrap();
        // replaced whole, not overwritten in place (no tail of the old content)
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert!(leftovers(p.parent().unwrap()).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_keeps_old_content_on_failure() {
        let dir = scratch("fail");
        fs::create_dir_all(dir.join("target_is_dir")).unwrap();
        fs::write(dir.join("target_is_dir/x"), b"keep").unwrap();
        // renaming a file over a non-empty directory fails: the error is Io and no
        // temporary file is left behind
        let err = write_atomic(&dir.join("target_is_dir"), b"new").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
        assert_eq!(fs::read(dir.join("target_is_dir/x")).unwrap(), b"keep");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_readers_never_see_partial_files() {
        // A reader polling the destination while a writer alternates between two
        // large contents must only ever see one of the two, complete.
        let dir = scratch("race");
        let p = dir.join("big.bin");
        let a = vec![b'a'; 1 << 20];
        let b = vec![b'b'; 1 << 19];
        write_atomic(&p, &a).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (p, stop) = (p.clone(), stop.clone());
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let got = fs::read(&p).unwrap();
                    assert!(got == a || got == b, "partial read of {} bytes", got.len());
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..20 {
            write_atomic(&p, if i % 2 == 0 { &b } else { &a }).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert!(leftovers(&dir).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_rejects_path_without_name() {
        assert!(matches!(
            write_atomic(Path::new("/"), b"x").unwrap_err(),
            Error::Io { .. }
        ));
    }
}
