//! Pascal VOC detection folders: `images/*.jpg` with `annotations/*.xml` (one file per image),
//! optionally split by CSV box lists (`filename,width,height,class,xmin,ymin,xmax,ymax`), as in
//! the raccoon data set.
//!
//! Broken input: malformed XML or a CSV row with a missing or non-numeric field is an error
//! naming the file (and row); an image without boxes, a box outside its image, a missing or
//! unreadable image are warnings (the item or box is skipped, a box that overlaps is clipped).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::warnings::Warnings;
use crate::vision::BBox;
use crate::{DataError, Result};

/// How far (pixels) a box may lie outside its image before it counts as outside: VOC's
/// coordinates are 1-based, so `xmax == width` (or `width + 1`) is normal.
const EDGE_TOLERANCE: f32 = 1.0;

/// One annotated image.
#[derive(Debug, Clone, PartialEq)]
pub struct VocItem {
    /// The image file.
    pub image: PathBuf,
    /// Width in pixels (from the image header).
    pub width: usize,
    /// Height in pixels (from the image header).
    pub height: usize,
    /// The boxes, clipped to the image, with class ids into [`VocSet::classes`].
    pub boxes: Vec<BBox>,
}

/// A loaded detection data set.
#[derive(Debug, Clone, PartialEq)]
pub struct VocSet {
    /// The items, in file-name order (numbers compared as numbers).
    pub items: Vec<VocItem>,
    /// Class names; a box's class id indexes this list. Sorted unless given.
    pub classes: Vec<String>,
    /// What was skipped or clipped.
    pub warnings: Warnings,
}

/// One `<object>` of a VOC annotation, before class ids are assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct VocObject {
    /// The class name.
    pub name: String,
    /// `(xmin, ymin, xmax, ymax)`.
    pub bbox: [f32; 4],
}

/// The fields of one VOC XML file that detection needs.
#[derive(Debug, Clone, PartialEq)]
pub struct VocAnnotation {
    /// `<filename>`.
    pub filename: String,
    /// `<size>`: width, height, depth.
    pub size: (usize, usize, usize),
    /// The objects.
    pub objects: Vec<VocObject>,
}

/// Parses VOC XML (`path` names it in errors).
pub fn parse_voc_xml(text: &str, path: &Path) -> Result<VocAnnotation> {
    let doc =
        roxmltree::Document::parse(text).map_err(|e| DataError::format(path, format!("not well-formed XML: {e}")))?;
    let root = doc.root_element();
    fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
        node.children().find(|c| c.has_tag_name(name))
    }
    let text_of = |node: roxmltree::Node<'_, '_>, name: &str| -> Result<String> {
        child(node, name)
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
            .ok_or_else(|| DataError::format(path, format!("<{}> has no <{name}>", node.tag_name().name())))
    };
    let number = |node: roxmltree::Node<'_, '_>, name: &str| -> Result<f32> {
        let t = text_of(node, name)?;
        t.parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| DataError::format(path, format!("<{name}> is '{t}', expected a number")))
    };
    let filename = text_of(root, "filename")?;
    let size = child(root, "size").ok_or_else(|| DataError::format(path, "no <size>"))?;
    let (w, h) = (number(size, "width")?, number(size, "height")?);
    let depth = if child(size, "depth").is_some() {
        number(size, "depth")?
    } else {
        3.0
    };
    let mut objects = Vec::new();
    for (i, obj) in root.children().filter(|c| c.has_tag_name("object")).enumerate() {
        let name = text_of(obj, "name")?;
        let bb = child(obj, "bndbox")
            .ok_or_else(|| DataError::format(path, format!("<object> {} ({name}) has no <bndbox>", i + 1)))?;
        let bbox = [
            number(bb, "xmin")?,
            number(bb, "ymin")?,
            number(bb, "xmax")?,
            number(bb, "ymax")?,
        ];
        objects.push(VocObject { name, bbox });
    }
    Ok(VocAnnotation {
        filename,
        size: (w as usize, h as usize, depth as usize),
        objects,
    })
}

/// One row of a CSV box list.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvBox {
    /// The image's file name.
    pub filename: String,
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Class name.
    pub class: String,
    /// `(xmin, ymin, xmax, ymax)`.
    pub bbox: [f32; 4],
}

/// Reads a CSV box list with the header `filename,width,height,class,xmin,ymin,xmax,ymax`
/// (columns found by name). A missing or non-numeric field is an error naming the file and row
/// (row 1 is the header).
pub fn read_box_csv(path: &Path) -> Result<Vec<CsvBox>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| DataError::format(path, format!("cannot open CSV: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| DataError::format(path, format!("row 1: {e}")))?
        .clone();
    let names = ["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"];
    let mut cols = [0usize; 8];
    for (c, name) in cols.iter_mut().zip(names) {
        *c = headers.iter().position(|h| h == name).ok_or_else(|| {
            DataError::format(
                path,
                format!("row 1: no column '{name}' (expected {})", names.join(",")),
            )
        })?;
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = record.map_err(|e| DataError::format(path, format!("row {row}: {e}")))?;
        let field = |k: usize| -> Result<&str> {
            record
                .get(cols[k])
                .filter(|s| !s.is_empty())
                .ok_or_else(|| DataError::format(path, format!("row {row}: field '{}' is missing", names[k])))
        };
        let num = |k: usize| -> Result<f32> {
            let s = field(k)?;
            s.parse::<f32>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                DataError::format(
                    path,
                    format!("row {row}: field '{}' is '{s}', expected a number", names[k]),
                )
            })
        };
        out.push(CsvBox {
            filename: field(0)?.to_string(),
            width: num(1)? as usize,
            height: num(2)? as usize,
            class: field(3)?.to_string(),
            bbox: [num(4)?, num(5)?, num(6)?, num(7)?],
        });
    }
    Ok(out)
}

/// Which images of a VOC folder to load.
#[derive(Debug, Clone, PartialEq)]
pub enum VocSplit {
    /// Every `annotations/*.xml`.
    All,
    /// The images a CSV box list names (e.g. `data/train_labels.csv`); boxes still come from XML.
    Csv(PathBuf),
}

/// Sort key: file names with their digits compared as numbers (`raccoon-2` before `raccoon-10`).
pub(crate) fn natural_key(name: &str) -> (String, u64, String) {
    let start = name.find(|c: char| c.is_ascii_digit()).unwrap_or(name.len());
    let end = name[start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(name.len(), |e| start + e);
    (
        name[..start].to_string(),
        name[start..end].parse().unwrap_or(0),
        name[end..].to_string(),
    )
}

/// Loads a VOC folder (`dir/images`, `dir/annotations`). `classes` fixes the class list (a box of
/// another class is a warning and skipped); `None` takes every name found, sorted.
pub fn load_voc(dir: &Path, split: &VocSplit, classes: Option<&[&str]>) -> Result<VocSet> {
    let ann_dir = dir.join("annotations");
    let img_dir = dir.join("images");
    let mut xmls: Vec<PathBuf> = match split {
        VocSplit::All => std::fs::read_dir(&ann_dir)
            .map_err(|e| DataError::io(&ann_dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")))
            .collect(),
        VocSplit::Csv(csv) => {
            let rows = read_box_csv(csv)?;
            let names: BTreeSet<String> = rows.into_iter().map(|r| r.filename).collect();
            names
                .iter()
                .map(|n| ann_dir.join(Path::new(n).with_extension("xml").file_name().unwrap_or_default()))
                .collect()
        }
    };
    if xmls.is_empty() {
        return Err(DataError::Missing {
            dir: ann_dir,
            names: "*.xml".into(),
            hint: " (a VOC folder holds images/ and annotations/)".into(),
        });
    }
    xmls.sort_by_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    let mut annotations = Vec::new();
    let mut warnings = Warnings::default();
    for xml in &xmls {
        let text = match std::fs::read_to_string(xml) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                warnings.push(format!("{}: missing (named by the split); skipped", xml.display()));
                continue;
            }
            Err(e) => return Err(DataError::io(xml, e)),
        };
        annotations.push((xml.clone(), parse_voc_xml(&text, xml)?));
    }
    let class_list: Vec<String> = match classes {
        Some(c) => c.iter().map(|s| s.to_string()).collect(),
        None => {
            let set: BTreeSet<&str> = annotations
                .iter()
                .flat_map(|(_, a)| a.objects.iter().map(|o| o.name.as_str()))
                .collect();
            set.into_iter().map(String::from).collect()
        }
    };
    let mut items = Vec::new();
    for (xml, ann) in annotations {
        let image = img_dir.join(&ann.filename);
        let (width, height) = match image::ImageReader::open(&image).and_then(|r| r.with_guessed_format()) {
            Ok(r) => match r.into_dimensions() {
                Ok((w, h)) => (w as usize, h as usize),
                Err(e) => {
                    warnings.push(format!("{}: unreadable image header ({e}); skipped", image.display()));
                    continue;
                }
            },
            Err(e) => {
                warnings.push(format!(
                    "{}: {e} (named by {}); skipped",
                    image.display(),
                    xml.display()
                ));
                continue;
            }
        };
        if (width, height) != (ann.size.0, ann.size.1) {
            warnings.push(format!(
                "{}: <size> says {}x{}, the image is {width}x{height}; the image's size is used",
                xml.display(),
                ann.size.0,
                ann.size.1
            ));
        }
        let mut boxes = Vec::new();
        for (k, obj) in ann.objects.iter().enumerate() {
            let Some(class) = class_list.iter().position(|c| *c == obj.name) else {
                warnings.push(format!(
                    "{}: object {} has class '{}', not in the class list; skipped",
                    xml.display(),
                    k + 1,
                    obj.name
                ));
                continue;
            };
            let [x0, y0, x1, y1] = obj.bbox;
            let b = BBox::new(x0, y0, x1, y1, class as u32);
            let (w, h) = (width as f32, height as f32);
            let clipped = b.clip(w, h);
            if x1 <= x0 || y1 <= y0 || clipped.area() <= 0.0 {
                warnings.push(format!(
                    "{}: object {} box ({x0}, {y0}, {x1}, {y1}) is empty or outside the {width}x{height} image; skipped",
                    xml.display(),
                    k + 1
                ));
                continue;
            }
            let t = EDGE_TOLERANCE;
            if x0 < -t || y0 < -t || x1 > w + t || y1 > h + t {
                warnings.push(format!(
                    "{}: object {} box ({x0}, {y0}, {x1}, {y1}) reaches outside the {width}x{height} image; clipped",
                    xml.display(),
                    k + 1
                ));
            }
            boxes.push(clipped);
        }
        if boxes.is_empty() {
            warnings.push(format!("{}: no usable boxes; image skipped", xml.display()));
            continue;
        }
        items.push(VocItem {
            image,
            width,
            height,
            boxes,
        });
    }
    Ok(VocSet {
        items,
        classes: class_list,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/raccoon")
    }

    #[test]
    fn the_embedded_raccoons_load_with_their_boxes() {
        let set = load_voc(&embedded(), &VocSplit::All, None).unwrap();
        assert!(set.warnings.is_empty(), "{}", set.warnings);
        assert_eq!(set.classes, vec!["raccoon"]);
        let names: Vec<String> = set
            .items
            .iter()
            .map(|i| i.image.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "raccoon-31.jpg",
                "raccoon-39.jpg",
                "raccoon-125.jpg",
                "raccoon-150.jpg",
                "raccoon-151.jpg"
            ]
        );
        let r31 = &set.items[0];
        assert_eq!((r31.width, r31.height), (236, 214));
        assert_eq!(
            r31.boxes,
            vec![
                BBox::new(82.0, 21.0, 187.0, 197.0, 0),
                BBox::new(11.0, 55.0, 80.0, 145.0, 0)
            ]
        );
        let train = load_voc(
            &embedded(),
            &VocSplit::Csv(embedded().join("data/train_labels.csv")),
            None,
        )
        .unwrap();
        assert_eq!(train.items.len(), 4);
        let test = load_voc(
            &embedded(),
            &VocSplit::Csv(embedded().join("data/test_labels.csv")),
            None,
        )
        .unwrap();
        assert_eq!(test.items.len(), 1);
        assert!(test.items[0].image.ends_with("raccoon-125.jpg"));
    }

    #[test]
    fn the_csv_rows_match_the_xml_boxes() {
        let set = load_voc(&embedded(), &VocSplit::All, None).unwrap();
        let rows = read_box_csv(&embedded().join("data/train_labels.csv")).unwrap();
        assert_eq!(rows.len(), 5);
        for row in rows {
            let item = set.items.iter().find(|i| i.image.ends_with(&row.filename)).unwrap();
            assert_eq!((item.width, item.height), (row.width, row.height));
            let [x0, y0, x1, y1] = row.bbox;
            assert!(item.boxes.contains(&BBox::new(x0, y0, x1, y1, 0)), "{}", row.filename);
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fovea-voc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("annotations")).unwrap();
        std::fs::create_dir_all(dir.join("images")).unwrap();
        for f in ["raccoon-150", "raccoon-151"] {
            std::fs::copy(
                embedded().join(format!("images/{f}.jpg")),
                dir.join(format!("images/{f}.jpg")),
            )
            .unwrap();
        }
        dir
    }

    fn xml(file: &str, objects: &str) -> String {
        format!(
            "<annotation><filename>{file}</filename><size><width>275</width><height>183</height><depth>1</depth></size>{objects}</annotation>"
        )
    }

    fn obj(x0: i32, y0: i32, x1: i32, y1: i32) -> String {
        format!(
            "<object><name>raccoon</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        )
    }

    #[test]
    fn boxes_outside_and_images_without_boxes_are_warnings() {
        let dir = scratch("warn");
        let a = format!(
            "{}{}{}",
            obj(300, 10, 400, 50),
            obj(-20, 10, 100, 50),
            obj(10, 10, 5, 50)
        );
        std::fs::write(dir.join("annotations/raccoon-150.xml"), xml("raccoon-150.jpg", &a)).unwrap();
        std::fs::write(dir.join("annotations/raccoon-151.xml"), xml("raccoon-151.jpg", "")).unwrap();
        std::fs::write(
            dir.join("annotations/raccoon-9.xml"),
            xml("raccoon-9.jpg", &obj(1, 1, 5, 5)),
        )
        .unwrap();
        let set = load_voc(&dir, &VocSplit::All, None).unwrap();
        assert_eq!(set.items.len(), 1);
        assert_eq!(set.items[0].boxes, vec![BBox::new(0.0, 10.0, 100.0, 50.0, 0)]);
        let text = set.warnings.to_string();
        assert_eq!(set.warnings.len(), 6, "{text}");
        assert!(
            text.contains("raccoon-150.xml: object 1 box (300, 10, 400, 50) is empty or outside"),
            "{text}"
        );
        assert!(
            text.contains("raccoon-150.xml: object 2") && text.contains("clipped"),
            "{text}"
        );
        assert!(text.contains("raccoon-150.xml: object 3"), "{text}");
        assert!(text.contains("raccoon-151.xml: no usable boxes"), "{text}");
        assert!(text.contains("raccoon-9.jpg") && text.contains("skipped"), "{text}");
        assert!(
            text.contains("raccoon-151.jpg") || text.contains("<size> says"),
            "{text}"
        );
        assert!(text.ends_with("6 warnings"), "{text}");
    }

    #[test]
    fn malformed_xml_and_short_csv_rows_are_errors_naming_file_and_row() {
        let dir = scratch("err");
        std::fs::write(
            dir.join("annotations/raccoon-150.xml"),
            "<annotation><filename>raccoon-150.jpg</filename>",
        )
        .unwrap();
        let err = load_voc(&dir, &VocSplit::All, None).unwrap_err().to_string();
        assert!(err.contains("raccoon-150.xml") && err.contains("XML"), "{err}");
        std::fs::write(
            dir.join("annotations/raccoon-150.xml"),
            xml(
                "raccoon-150.jpg",
                "<object><name>r</name><bndbox><xmin>a</xmin></bndbox></object>",
            ),
        )
        .unwrap();
        let err = load_voc(&dir, &VocSplit::All, None).unwrap_err().to_string();
        assert!(err.contains("<xmin> is 'a'"), "{err}");
        let csv = dir.join("split.csv");
        std::fs::write(&csv, "filename,width,height,class,xmin,ymin,xmax,ymax\nraccoon-150.jpg,275,183,raccoon,1,2,3,4\nraccoon-151.jpg,225,225,raccoon,42,94,108\n").unwrap();
        let err = read_box_csv(&csv).unwrap_err().to_string();
        assert!(
            err.contains("split.csv") && err.contains("row 3") && err.contains("'ymax' is missing"),
            "{err}"
        );
        std::fs::write(
            &csv,
            "filename,width,height,class,xmin,ymin,xmax,ymax\nraccoon-150.jpg,275,183,raccoon,1,2,x,4\n",
        )
        .unwrap();
        assert!(
            read_box_csv(&csv)
                .unwrap_err()
                .to_string()
                .contains("row 2: field 'xmax' is 'x'")
        );
    }
}
