//! Enrolment files: a gallery of named people, each with the embeddings of their enrolled
//! faces, the model that made them and the verification threshold, as JSON.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::vision::{Image, read_image};

use super::metrics::distance;

/// The `format` field of a gallery file.
pub const GALLERY_FORMAT: &str = "fovea-faces-gallery";
/// Gallery files larger than this are refused before reading.
const MAX_GALLERY_BYTES: u64 = 256 << 20;
/// Image suffixes enrolment reads.
const IMAGE_SUFFIXES: &[&str] = &["pgm", "png", "jpg", "jpeg", "bmp"];

/// Which model made a gallery's embeddings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GalleryModel {
    /// A trained zoo net and its weights file.
    Trained {
        /// The safetensors file (absolute when enrolled).
        weights: PathBuf,
    },
    /// face-api's pretrained descriptor.
    FaceApi {
        /// The package folder.
        dir: PathBuf,
        /// Whether faces are aligned first (`--align`); absent in older files: not aligned.
        #[serde(default)]
        align: bool,
    },
}

/// One enrolled person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// The name (the gallery folder's subfolder).
    pub name: String,
    /// The images enrolled.
    pub images: Vec<String>,
    /// One embedding per image.
    pub embeddings: Vec<Vec<f32>>,
}

/// A gallery file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryFile {
    /// Always [`GALLERY_FORMAT`].
    pub format: String,
    /// The model.
    pub model: GalleryModel,
    /// Distances at most this are a match.
    pub threshold: f64,
    /// The people.
    pub people: Vec<Person>,
}

/// What identification says about a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The nearest person's name.
    pub nearest: String,
    /// The distance to them (the smallest over their images).
    pub distance: f64,
    /// Whether it is within the threshold (else the probe is "unknown").
    pub accepted: bool,
}

impl GalleryFile {
    /// Reads and checks a gallery file: size, JSON, format, one embedding dimension, finite
    /// values, at least one person. Errors name the file.
    pub fn read(path: &Path) -> Result<GalleryFile> {
        let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
        if meta.len() > MAX_GALLERY_BYTES {
            return Err(DataError::format(
                path,
                format!("{} bytes is too large for a gallery", meta.len()),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let g: GalleryFile = serde_json::from_str(&text).map_err(|e| {
            DataError::format(
                path,
                format!("not a gallery file (fovea faces enroll writes them): {e}"),
            )
        })?;
        if g.format != GALLERY_FORMAT {
            return Err(DataError::format(
                path,
                format!("format is '{}', expected '{GALLERY_FORMAT}'", g.format),
            ));
        }
        let dim = g.people.first().and_then(|p| p.embeddings.first()).map(Vec::len);
        let Some(dim) = dim.filter(|&d| d > 0) else {
            return Err(DataError::format(path, "the gallery enrols nobody"));
        };
        for p in &g.people {
            if p.embeddings.is_empty()
                || p.embeddings
                    .iter()
                    .any(|e| e.len() != dim || e.iter().any(|v| !v.is_finite()))
            {
                return Err(DataError::format(
                    path,
                    format!(
                        "person '{}' needs at least one finite embedding of {dim} values",
                        p.name
                    ),
                ));
            }
        }
        if !g.threshold.is_finite() || g.threshold < 0.0 {
            return Err(DataError::format(
                path,
                format!("threshold {} is not a distance", g.threshold),
            ));
        }
        Ok(g)
    }

    /// The nearest person to `probe` and whether the threshold accepts them.
    pub fn identify(&self, probe: &[f32]) -> Option<Match> {
        self.people
            .iter()
            .map(|p| {
                let d = p
                    .embeddings
                    .iter()
                    .map(|e| distance(e, probe))
                    .fold(f64::INFINITY, f64::min);
                (p, d)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(p, d)| Match {
                nearest: p.name.clone(),
                distance: d,
                accepted: d <= self.threshold,
            })
    }
}

/// A person of a gallery folder: the name and its (file name, image) pairs.
pub type GalleryPerson = (String, Vec<(String, Image)>);

/// The people of a gallery folder: one subfolder per person (its name), holding that
/// person's face images (PGM, PNG, JPEG, BMP). Errors name the folder or the unreadable image.
pub fn read_gallery_folder(dir: &Path) -> Result<Vec<GalleryPerson>> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut folders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut people = Vec::new();
    for folder in folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| DataError::io(&folder, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .map(|x| IMAGE_SUFFIXES.contains(&x.to_string_lossy().to_ascii_lowercase().as_str()))
                    .unwrap_or(false)
            })
            .collect();
        files.sort();
        let mut images = Vec::new();
        for f in files {
            let img = read_image(&f)?;
            images.push((f.display().to_string(), img));
        }
        if !images.is_empty() {
            people.push((name, images));
        }
    }
    if people.is_empty() {
        return Err(DataError::Missing {
            dir: dir.to_path_buf(),
            names: "subfolders of face images".into(),
            hint: " (one folder per person, named for them, holding .pgm/.png/.jpg faces)".into(),
        });
    }
    Ok(people)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(threshold: f64) -> GalleryFile {
        GalleryFile {
            format: GALLERY_FORMAT.into(),
            model: GalleryModel::Trained {
                weights: "w.safetensors".into(),
            },
            threshold,
            people: vec![
                Person {
                    name: "ann".into(),
                    images: vec!["a1".into(), "a2".into()],
                    embeddings: vec![vec![0.0, 0.0], vec![1.0, 0.0]],
                },
                Person {
                    name: "bob".into(),
                    images: vec!["b1".into()],
                    embeddings: vec![vec![0.0, 3.0]],
                },
            ],
        }
    }

    #[test]
    fn identification_takes_the_nearest_image_and_the_threshold() {
        let g = file(0.5);
        let m = g.identify(&[0.9, 0.2]).unwrap();
        assert_eq!(m.nearest, "ann");
        assert!(
            (m.distance - (0.01f64 + 0.04).sqrt()).abs() < 1e-6 && m.accepted,
            "{m:?}"
        );
        let far = g.identify(&[0.0, 2.0]).unwrap();
        assert_eq!(far.nearest, "bob");
        assert!(!far.accepted, "distance 1 > 0.5: unknown");
    }

    #[test]
    fn files_round_trip_and_bad_ones_name_the_file() {
        let dir = std::env::temp_dir().join(format!("fovea-gallery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.json");
        std::fs::write(&path, serde_json::to_string(&file(0.5)).unwrap()).unwrap();
        assert_eq!(GalleryFile::read(&path).unwrap(), file(0.5));
        let mut ragged = file(0.5);
        ragged.people[1].embeddings[0].push(1.0);
        std::fs::write(&path, serde_json::to_string(&ragged).unwrap()).unwrap();
        let e = GalleryFile::read(&path).unwrap_err().to_string();
        assert!(e.contains("g.json") && e.contains("bob"), "{e}");
        std::fs::write(&path, b"{not json").unwrap();
        let e = GalleryFile::read(&path).unwrap_err().to_string();
        assert!(e.contains("g.json") && e.contains("not a gallery"), "{e}");
        let e = read_gallery_folder(&dir).unwrap_err().to_string();
        assert!(e.contains("subfolders"), "{e}");
        std::fs::create_dir_all(dir.join("carl")).unwrap();
        std::fs::write(dir.join("carl/1.pgm"), b"P5\n2 2\n255\nx").unwrap();
        let e = read_gallery_folder(&dir).unwrap_err().to_string();
        assert!(e.contains("1.pgm"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
