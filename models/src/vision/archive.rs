//! Members of a `.tar.gz` archive, read without unpacking it.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::{DataError, Result};

/// The largest member read into memory (64 MiB); a larger header size is an error.
pub const MAX_MEMBER_BYTES: u64 = 64 << 20;

/// Streams through the archive once and returns `(member path, bytes)` for every regular file
/// member whose path `wanted` accepts, in archive order. A member claiming more than
/// [`MAX_MEMBER_BYTES`] is refused before anything is allocated for it.
pub fn read_tar_gz_members(path: &Path, wanted: impl Fn(&str) -> bool) -> Result<Vec<(String, Vec<u8>)>> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let bad = |message: String| DataError::format(path, message);
    let mut archive = tar::Archive::new(GzDecoder::new(std::io::BufReader::new(file)));
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
    let mut out = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("corrupt archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| bad(format!("bad member name: {e}")))?
            .to_string_lossy()
            .into_owned();
        if !wanted(&name) {
            continue;
        }
        let size = entry.size();
        if size > MAX_MEMBER_BYTES {
            return Err(bad(format!(
                "member {name} claims {size} bytes, more than the {MAX_MEMBER_BYTES} allowed"
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("member {name}: {e}")))?;
        if bytes.len() as u64 != size {
            return Err(bad(format!(
                "member {name}: {} of {size} bytes (truncated)",
                bytes.len()
            )));
        }
        out.push((name, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (name, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn reads_the_members_asked_for() {
        let p = std::env::temp_dir().join(format!("fovea-archive-{}.tar.gz", std::process::id()));
        std::fs::write(
            &p,
            archive(&[("a/1.txt", b"one"), ("a/2.bin", b"two"), ("b/3.txt", b"three")]),
        )
        .unwrap();
        let got = read_tar_gz_members(&p, |n| n.ends_with(".txt")).unwrap();
        assert_eq!(
            got,
            vec![
                ("a/1.txt".to_string(), b"one".to_vec()),
                ("b/3.txt".to_string(), b"three".to_vec())
            ]
        );
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_tar_gz_members(&p, |_| true).unwrap_err().to_string();
        assert!(err.contains("fovea-archive"), "{err}");
        std::fs::write(&p, b"plain text").unwrap();
        assert!(read_tar_gz_members(&p, |_| true).is_err());
    }
}
