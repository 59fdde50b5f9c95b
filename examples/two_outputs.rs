//! A two-output model (a class and a box) trained with a custom loss written from IR ops:
//! cross-entropy on the class plus a Huber box loss that counts only images holding an
//! object, weighted as Keras's `compile(loss={...}, loss_weights={...})` would.
//!
//! `cargo run --release --example two_outputs`

use fovea::graph::init::Rng;
use fovea::graph::ir::{BinaryOp, Op};
use fovea::prelude::*;

/// 16x16 images with a bright 5x5 square on the left (class 0) or right (class 1) half, or
/// none (class 2); the box is the square's `(x0, y0, x1, y1) / 16`, zeros when absent.
fn synthetic(n: usize, seed: u64) -> NamedArrays {
    let mut rng = Rng::new(seed);
    let (mut img, mut cls, mut boxes, mut present) = (vec![0f32; n * 256], vec![], vec![], vec![]);
    for i in 0..n {
        let c = rng.below(3);
        cls.push(c as f32);
        if c == 2 {
            boxes.extend([0.0; 4]);
            present.push(0.0);
            continue;
        }
        let x0 = rng.below(3) + 8 * c;
        let y0 = rng.below(12);
        for y in y0..y0 + 5 {
            for x in x0..x0 + 5 {
                img[i * 256 + y * 16 + x] = 1.0;
            }
        }
        boxes.extend([
            x0 as f32 / 16.0,
            y0 as f32 / 16.0,
            (x0 + 5) as f32 / 16.0,
            (y0 + 5) as f32 / 16.0,
        ]);
        present.push(1.0);
    }
    NamedArrays::new()
        .with(
            "image",
            Tensor {
                shape: vec![n, 16, 16, 1],
                data: img,
            },
        )
        .with(
            "classes",
            Tensor {
                shape: vec![n],
                data: cls,
            },
        )
        .with(
            "box",
            Tensor {
                shape: vec![n, 4],
                data: boxes,
            },
        )
        .with(
            "present",
            Tensor {
                shape: vec![n],
                data: present,
            },
        )
}

fn main() -> anyhow::Result<()> {
    let mut f = Functional::new("class_and_box");
    let x = f.input(Input::new(&[16, 16, 1]).name("image"));
    let h = f.call(Conv2D::new(8, 3).padding("same").activation("relu"), &[x]);
    let h = f.call(MaxPooling2D::new(2), &[h]);
    let h = f.call(Conv2D::new(16, 3).padding("same").activation("relu"), &[h]);
    let h = f.call(Flatten::new(), &[h]);
    let classes = f.call(Dense::new(3).name("classes"), &[h]);
    let boxes = f.call(Dense::new(4).activation("sigmoid").name("box"), &[h]);
    let model = f.build(&[classes, boxes], 3)?;
    print!("{}", model.summary());

    // The box loss: Huber per image (mean over the 4 coordinates), times "present", so that
    // images without an object teach nothing about boxes.
    let box_loss = GraphFn::new(|ctx| {
        let pred = ctx.output("box")?;
        let truth = ctx.target("box", &[4])?;
        let present = ctx.target("present", &[])?;
        let per_image = Loss::Huber { delta: 1.0 }.elements(ctx.graph, pred, truth, None)?;
        ctx.graph
            .push(Op::Binary(BinaryOp::Mul), &[per_image, present], "box_loss")
    });
    let cfg = CompileConfig::with_terms(
        vec![
            LossTerm::on(
                "classes",
                Loss::SparseCategoricalCrossentropy { from_logits: true },
                1.0,
            ),
            LossTerm::custom("box_loss", 5.0, box_loss),
        ],
        Optimizer::adam(0.01),
        vec![MetricTerm::on("classes", Metric::Accuracy)],
    );
    let device = Arc::new(Device::new()?);
    println!("device: {}", device.describe());
    let mut cm = CompiledModel::new(&device, model, cfg)?;
    let train = synthetic(512, 1);
    let test = synthetic(128, 2);
    let opts = FitOptions {
        epochs: 8,
        batch_size: 32,
        validation_arrays: Some(test.clone()),
        ..FitOptions::default()
    };
    let history = cm.fit_arrays(&train, &opts)?;
    let last = history.epochs.last().map(|e| e.val.clone()).unwrap_or_default();
    println!("held-out: {last:?}");
    let inputs = NamedArrays::new().with("image", test.get("image").cloned().unwrap_or(Tensor::zeros(vec![1])));
    let out = cm.predict_arrays(&inputs, 64)?;
    let (boxes, truth, present) = (&out[1].1, test.get("box"), test.get("present"));
    if let (Some(truth), Some(present)) = (truth, present) {
        let (mut err, mut count) = (0.0, 0.0);
        for i in 0..present.data.len() {
            if present.data[i] > 0.5 {
                for k in 0..4 {
                    err += (boxes.data[i * 4 + k] - truth.data[i * 4 + k]).abs() * 16.0;
                }
                count += 4.0;
            }
        }
        println!(
            "mean box corner error on held-out images with an object: {:.2} px",
            err / count
        );
    }
    Ok(())
}
