//! The AT&T (ORL) faces: 40 subjects `s1..s40`, ten 92x112 grey PGMs each, read straight from
//! `att_faces.tar.gz` (no unpacking) or from the unpacked `sN/M.pgm` folders.
//!
//! An unreadable image is a warning (the face is skipped); a folder or archive without any
//! `sN/M.pgm` is an error.

use std::path::{Path, PathBuf};

use fovea_engine::dataset::{Dataset, Example};
use fovea_graph::Tensor;
use fovea_graph::init::Rng;

use super::warnings::Warnings;
use crate::vision::archive::read_tar_gz_members;
use crate::vision::augment::{Pipeline, Sample};
use crate::vision::{DecodeLimits, Image, Normalization, decode_image, image_to_tensor};
use crate::{DataError, Result};

/// Loaded faces, sorted by subject then image number.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceSet {
    /// Grey images, `[0, 1]`.
    pub images: Vec<Image>,
    /// Subject per image, 0-based (`s1` is 0).
    pub subjects: Vec<u32>,
    /// Where each image came from (`archive.tar.gz:att_faces/s1/1.pgm` or a file path).
    pub sources: Vec<String>,
    /// Faces skipped.
    pub warnings: Warnings,
}

impl FaceSet {
    /// Number of distinct subjects.
    pub fn subject_count(&self) -> usize {
        let mut s = self.subjects.clone();
        s.sort_unstable();
        s.dedup();
        s.len()
    }
}

/// `(subject, image)` from a member path ending in `sN/M.pgm`.
fn parse_name(name: &str) -> Option<(u32, u32)> {
    let mut parts = name.rsplit('/');
    let file = parts.next()?;
    let dir = parts.next()?;
    let subject: u32 = dir.strip_prefix('s')?.parse().ok()?;
    let image: u32 = file.strip_suffix(".pgm")?.parse().ok()?;
    (subject >= 1).then_some((subject, image))
}

/// Loads faces from `path`: a `.tar.gz`, a folder holding `att_faces.tar.gz` (or another single
/// `*.tar.gz`), or a folder with `sN/` subfolders (directly or under `att_faces/`).
pub fn load_orl(path: &Path) -> Result<FaceSet> {
    if path.is_file() {
        return load_archive(path);
    }
    let archive = path.join("att_faces.tar.gz");
    if archive.is_file() {
        return load_archive(&archive);
    }
    let root = if path.join("att_faces").is_dir() {
        path.join("att_faces")
    } else {
        path.to_path_buf()
    };
    let mut files = Vec::new();
    let subjects = std::fs::read_dir(&root).map_err(|e| DataError::io(&root, e))?;
    for dir in subjects.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
        let entries = std::fs::read_dir(dir.path()).map_err(|e| DataError::io(dir.path(), e))?;
        for f in entries.filter_map(|e| e.ok()) {
            let name = format!(
                "{}/{}",
                dir.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
            if parse_name(&name).is_some() {
                files.push((name, f.path()));
            }
        }
    }
    if files.is_empty() {
        let tars: Vec<PathBuf> = std::fs::read_dir(&root)
            .map_err(|e| DataError::io(&root, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .collect();
        if let [one] = tars.as_slice() {
            return load_archive(one);
        }
        return Err(DataError::Missing {
            dir: root,
            names: "att_faces.tar.gz or sN/M.pgm".into(),
            hint: " (the AT&T faces: 40 folders s1..s40 of ten PGMs)".into(),
        });
    }
    let mut members = Vec::new();
    for (name, p) in files {
        let bytes = std::fs::read(&p).map_err(|e| DataError::io(&p, e))?;
        members.push((name, p.display().to_string(), bytes));
    }
    Ok(decode_members(members))
}

fn load_archive(path: &Path) -> Result<FaceSet> {
    let members = read_tar_gz_members(path, |n| parse_name(n).is_some())?;
    if members.is_empty() {
        return Err(DataError::format(
            path,
            "no sN/M.pgm members (expected the AT&T faces archive)",
        ));
    }
    Ok(decode_members(
        members
            .into_iter()
            .map(|(n, b)| (n.clone(), format!("{}:{n}", path.display()), b))
            .collect(),
    ))
}

/// Decodes `(member name, source, bytes)`; unreadable faces become warnings.
fn decode_members(mut members: Vec<(String, String, Vec<u8>)>) -> FaceSet {
    members.sort_by_key(|(n, _, _)| parse_name(n));
    let mut set = FaceSet {
        images: Vec::new(),
        subjects: Vec::new(),
        sources: Vec::new(),
        warnings: Warnings::default(),
    };
    for (name, source, bytes) in members {
        let Some((subject, _)) = parse_name(&name) else {
            continue;
        };
        match decode_image(&bytes, Path::new(&source), &DecodeLimits::default()) {
            Ok(img) => {
                set.images.push(img.to_gray());
                set.subjects.push(subject - 1);
                set.sources.push(source);
            }
            Err(e) => set.warnings.push(format!("{e}; skipped")),
        }
    }
    set
}

/// Serves faces: field `image` `(112, 92, 1)` (or the augmented size) and field `label` (the
/// subject, a scalar).
#[derive(Debug, Clone)]
pub struct FaceStream {
    /// The faces.
    pub set: FaceSet,
    /// Augmentation.
    pub pipeline: Pipeline,
    /// Tensor normalisation.
    pub normalization: Normalization,
}

impl FaceStream {
    /// No augmentation, `[0, 1]` pixels.
    pub fn new(set: FaceSet) -> FaceStream {
        FaceStream {
            set,
            pipeline: Pipeline::default(),
            normalization: Normalization::UnitRange,
        }
    }
}

impl Dataset for FaceStream {
    fn len(&self) -> usize {
        self.set.images.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> std::result::Result<Example, String> {
        let image = self
            .set
            .images
            .get(index)
            .ok_or_else(|| format!("face {index} is outside the set"))?;
        let s = self
            .pipeline
            .apply(Sample::new(image.clone()), rng)
            .map_err(|e| e.to_string())?;
        let label = Tensor {
            shape: vec![],
            data: vec![self.set.subjects[index] as f32],
        };
        Ok(Example::default()
            .with(
                "image",
                image_to_tensor(&s.image, &self.normalization).map_err(|e| e.to_string())?,
            )
            .with("label", label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/faces/att_faces_s1_s2.tar.gz")
    }

    #[test]
    fn the_embedded_archive_holds_two_subjects_of_ten() {
        let set = load_orl(&embedded()).unwrap();
        assert!(set.warnings.is_empty(), "{}", set.warnings);
        assert_eq!(set.images.len(), 20);
        assert_eq!(set.subject_count(), 2);
        assert_eq!(&set.subjects[..11], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(set.sources[1].ends_with("att_faces/s1/2.pgm"), "{}", set.sources[1]);
        let f = &set.images[0];
        assert_eq!((f.width, f.height, f.channels), (92, 112, 1));
        // Loading the folder that holds the archive finds it too.
        let dir = std::env::temp_dir().join(format!("fovea-orl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(embedded(), dir.join("faces.tar.gz")).unwrap();
        assert_eq!(
            load_orl(&dir).unwrap(),
            FaceSet {
                sources: load_orl(&dir).unwrap().sources,
                ..set.clone()
            }
        );
    }

    #[test]
    fn unpacked_folders_give_the_same_faces_and_bad_files_are_warnings() {
        let set = load_orl(&embedded()).unwrap();
        let dir = std::env::temp_dir().join(format!("fovea-orl-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, bytes) in read_tar_gz_members(&embedded(), |_| true).unwrap() {
            let p = dir.join(&name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        let unpacked = load_orl(&dir).unwrap();
        assert_eq!(unpacked.images, set.images);
        assert_eq!(unpacked.subjects, set.subjects);
        std::fs::write(dir.join("att_faces/s2/3.pgm"), b"P5\n92 112\n255\nshort").unwrap();
        let damaged = load_orl(&dir).unwrap();
        assert_eq!(damaged.images.len(), 19);
        assert!(
            damaged.warnings.to_string().contains("s2/3.pgm"),
            "{}",
            damaged.warnings
        );
        let stream = FaceStream::new(damaged);
        let ex = stream.get(12, &mut Rng::new(0)).unwrap();
        assert_eq!(ex.get("image").unwrap().shape, vec![112, 92, 1]);
        assert_eq!(ex.get("label").unwrap().data, vec![1.0]);
    }
}
