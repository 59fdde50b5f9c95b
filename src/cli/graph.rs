//! `fovea graph MODEL`: the inspection tool. Shows any stage of a model's compilation (layers,
//! IR, gradient graph, optimised graph, lowered kernels, memory plan) as text, DOT or JSON, with
//! statistics of fusion and memory planning. Needs no GPU: lowering targets an adapter class.

use anyhow::{Context, bail};
use fovea_graph::dump::{KernelNote, NodeAnnotation, to_dot, to_json, to_text};
use fovea_graph::passes::{PassReport, fusion_groups, optimize};
use fovea_graph::plan::{MemoryPlan, plan_memory};
use fovea_graph::train::{CompileConfig, Loss, LossTerm, Metric, Optimizer, train_step};
use fovea_graph::{Graph, Model, NodeId, Op};
use fovea_kernels::{KernelInstance, Location, Target, fuse_updates, lower_graph, lower_planned};
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `fovea graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A zoo model (mnist, cifar10), a Keras model file (.json) or a TFLite file (.tflite).
    pub model: String,
    /// The whole training step (forward, loss, backward, update) instead of inference.
    #[arg(long)]
    pub train: bool,
    /// With --train: the loss of every output (Keras name; from logits for the cross-entropies).
    #[arg(long, default_value = "sparse_categorical_crossentropy")]
    pub loss: String,
    /// layers, ir, grad, optimized, lowered or memory.
    #[arg(long, default_value = "optimized")]
    pub stage: String,
    /// text, dot or json.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Write to a file instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Node, kernel and dispatch counts before and after fusion; planned vs baseline memory.
    #[arg(long)]
    pub stats: bool,
    /// The batch size the graph is built for.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Adapter class kernels are chosen for: cpu (lavapipe) or gpu.
    #[arg(long, default_value = "cpu")]
    pub target: String,
    /// Render with Graphviz to FILE.svg or FILE.png.
    #[arg(long)]
    pub render: Option<PathBuf>,
}

/// A zoo model by name, a Keras model file (`.json`) or a TFLite file (`.tflite`).
pub fn load_model(spec: &str) -> anyhow::Result<Model> {
    if fovea_formats::tflite::is_tflite_path(std::path::Path::new(spec)) {
        return Ok(fovea_formats::tflite::load(spec)?);
    }
    if spec.ends_with(".json") || std::path::Path::new(spec).is_file() {
        return super::keras::load_model_file(std::path::Path::new(spec));
    }
    Ok(fovea_models::zoo::by_name(spec, 0)?)
}

/// Where node `id`'s value lives, for the dumps: the buffer and the byte offset in it.
fn buffer_note(g: &Graph, plan: &MemoryPlan, id: NodeId) -> (String, u64) {
    let root = g.storage_root(id);
    let i = root.index();
    match (&g.node(root).op, plan.place[i], plan.in_place[i]) {
        _ if root != id => (format!("view of {root}"), 0),
        (Op::Param { .. }, ..) => ("param".into(), 0),
        (Op::Input { .. }, ..) => ("input".into(), 0),
        (Op::Constant { .. }, ..) => ("constant".into(), 0),
        (_, Some(p), None) => (format!("arena {}", p.arena), p.offset),
        (_, Some(p), Some(r)) => (format!("arena {} (in place over {r})", p.arena), p.offset),
        (_, None, Some(r)) => (format!("param {r} (update in place)"), 0),
        (_, None, None) => ("own".into(), 0),
    }
}

fn annotate(
    g: &Graph,
    kernels: &[KernelInstance],
    plan: &MemoryPlan,
    groups: Option<&[Option<usize>]>,
) -> Vec<NodeAnnotation> {
    let mut notes = vec![NodeAnnotation::default(); g.nodes.len()];
    for k in kernels {
        notes[k.node.index()].kernels.push(KernelNote {
            name: k.name.clone(),
            workgroups: k.workgroups,
            workgroup_size: k.workgroup_size,
        });
    }
    for (i, note) in notes.iter_mut().enumerate() {
        let id = NodeId(i as u32);
        let (buffer, offset) = buffer_note(g, plan, id);
        note.buffer = Some(buffer);
        note.offset = offset;
        note.group = groups.and_then(|gr| gr[i]);
    }
    notes
}

/// Where the engine would put every storage root: the plan's arenas, then one state chunk
/// with the parameters in graph order, then a buffer per input.
fn tool_layout<'a>(g: &'a Graph, plan: &'a MemoryPlan) -> impl Fn(NodeId) -> Option<Location> + 'a {
    let mut locs: Vec<Option<Location>> = vec![None; g.nodes.len()];
    let state_key = plan.arenas.len();
    let mut state_end = 0u64;
    for (i, n) in g.nodes.iter().enumerate() {
        if let Op::Param { .. } = n.op {
            locs[i] = Some(Location {
                buffer: state_key,
                offset: state_end,
                buffer_size: 0,
            });
            state_end += (n.ty.size_bytes() as u64).div_ceil(256).max(1) * 256;
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        locs[i] = match (&n.op, plan.place[i], plan.in_place[i]) {
            (Op::Param { .. }, ..) => locs[i].map(|l| Location {
                buffer_size: state_end,
                ..l
            }),
            (_, Some(p), _) => Some(Location {
                buffer: p.arena,
                offset: p.offset,
                buffer_size: plan.arenas[p.arena],
            }),
            (_, None, Some(r)) => locs[r.index()].map(|l| Location {
                buffer_size: state_end,
                ..l
            }),
            (Op::Input { .. }, ..) => Some(Location {
                buffer: state_key + 1 + i,
                offset: 0,
                buffer_size: n.ty.size_bytes() as u64,
            }),
            _ => None,
        };
    }
    move |id| locs[g.storage_root(id).index()]
}

/// Builds every stage and prints (or writes) the one asked for.
pub fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be positive");
    let model = load_model(&a.model)?;
    let target = match a.target.as_str() {
        "cpu" => Target::cpu(),
        "gpu" => Target::gpu(),
        t => bail!("--target {t}: expected cpu (lavapipe-class adapters) or gpu"),
    };
    let ir = if a.train {
        model.training_graph(a.batch_size)?
    } else {
        model.graph(a.batch_size)?
    };
    let full = if a.train {
        let loss = Loss::parse(&a.loss, true)?;
        let outputs = model.output_names();
        let cfg = if outputs.len() == 1 {
            let metrics = if loss.sparse_labels() {
                vec![Metric::Accuracy]
            } else {
                vec![]
            };
            CompileConfig::new(loss, Optimizer::adam(0.001), metrics)
        } else {
            // One loss per output, summed, as Keras's compile(loss={...}).
            let terms = outputs.iter().map(|o| LossTerm::on(o, loss, 1.0)).collect();
            CompileConfig::with_terms(terms, Optimizer::adam(0.001), vec![])
        };
        train_step(&model, a.batch_size, &cfg)?.graph
    } else {
        ir.clone()
    };
    let (optimized, reports) = optimize(full.clone())?;
    let unfused_kernels = lower_graph(&full, &target)?;
    let plan = plan_memory(&optimized);
    let kernels = lower_planned(&optimized, &target, &plan)?;
    let kernels = fuse_updates(
        &optimized,
        &plan,
        kernels,
        &tool_layout(&optimized, &plan),
        &target,
        128 << 20,
    )
    .0;
    let unfused_plan = plan_memory(&full);
    let format = a.format.as_str();
    if !["text", "dot", "json"].contains(&format) {
        bail!("--format {format}: expected text, dot or json");
    }
    let body = match a.stage.as_str() {
        "layers" => match format {
            "json" => serde_json::to_string_pretty(&json!(model
                .layers()
                .iter()
                .zip(model.layer_info())
                .map(|(l, i)| json!({"name": l.name, "class": l.layer.class_name(), "output_shape": i.output_shape, "params": i.params,
                    "inputs": l.inputs.iter().map(|&k| model.layers()[k].name.clone()).collect::<Vec<_>>()}))
                .collect::<Vec<_>>()))?,
            "text" => model.summary(),
            _ => bail!("--stage layers has text and json formats"),
        },
        "ir" | "grad" => {
            let g = if a.stage == "ir" { &ir } else { &full };
            let groups = fusion_groups(g);
            let notes = annotate(g, &[], &plan_memory(g), Some(&groups));
            render(g, Some(&notes), format)?
        }
        "optimized" | "lowered" | "memory" => {
            let notes = annotate(&optimized, &kernels, &plan, None);
            let mut s = render(&optimized, (a.stage != "optimized").then_some(&notes[..]), format)?;
            if a.stage == "optimized" && format == "text" {
                for r in &reports {
                    s.push_str(&format!("# {r}\n"));
                    for c in &r.changes {
                        s.push_str(&format!("#   {c}\n"));
                    }
                }
            }
            if a.stage == "memory" && format == "text" {
                s.push_str(&format!(
                    "# memory plan: {} arenas, planned {} bytes, no-reuse baseline {} bytes, inputs and parameters {} bytes, {} tensors in place\n",
                    plan.arenas.len(),
                    plan.planned_bytes,
                    plan.baseline_bytes,
                    plan.fixed_bytes,
                    plan.in_place.iter().flatten().count()
                ));
                for (i, s_) in plan.arenas.iter().enumerate() {
                    s.push_str(&format!("#   arena {i}: {s_} bytes\n"));
                }
            }
            s
        }
        other => bail!("--stage {other}: expected layers, ir, grad, optimized, lowered or memory"),
    };
    let stats = json!({
        "model": a.model,
        "train": a.train,
        "batch_size": a.batch_size,
        "target": a.target,
        "nodes_unfused": full.nodes.len(),
        "nodes_fused": optimized.nodes.len(),
        "kernels_unfused": distinct(&unfused_kernels),
        "kernels_fused": distinct(&kernels),
        "dispatches_unfused": unfused_kernels.len(),
        "dispatches_fused": kernels.len(),
        "peak_bytes_baseline": unfused_plan.baseline_bytes,
        "peak_bytes_baseline_fused": plan.baseline_bytes,
        "peak_bytes_planned": plan.planned_bytes,
        "param_and_input_bytes": plan.fixed_bytes,
        "arenas": plan.arenas.len(),
        "in_place_tensors": plan.in_place.iter().flatten().count(),
        "passes": reports.iter().map(|r: &PassReport| json!({"pass": r.pass, "nodes_before": r.nodes_before, "nodes_after": r.nodes_after, "changes": r.changes.len()})).collect::<Vec<_>>(),
    });
    let text = if a.stats {
        if format == "json" {
            serde_json::to_string_pretty(&stats)?
        } else {
            format!(
                "{} ({}batch {}, {} target)\n  nodes:      {} -> {} after passes\n  kernels:    {} -> {} distinct\n  dispatches: {} -> {} per run ({:.0}%)\n  peak memory (intermediates): {} bytes without reuse -> {} bytes planned ({:.0}%)\n  inputs and parameters: {} bytes\n",
                a.model,
                if a.train { "training step, " } else { "" },
                a.batch_size,
                a.target,
                full.nodes.len(),
                optimized.nodes.len(),
                distinct(&unfused_kernels),
                distinct(&kernels),
                unfused_kernels.len(),
                kernels.len(),
                100.0 * kernels.len() as f64 / unfused_kernels.len().max(1) as f64,
                unfused_plan.baseline_bytes,
                plan.planned_bytes,
                100.0 * plan.planned_bytes as f64 / unfused_plan.baseline_bytes.max(1) as f64,
                plan.fixed_bytes
            )
        }
    } else {
        body.clone()
    };
    match &a.output {
        Some(p) => std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    if let Some(out) = &a.render {
        let dot = if format == "dot" && !a.stats {
            body
        } else {
            to_dot(&optimized, None)
        };
        render_with_graphviz(&dot, out)?;
    }
    Ok(())
}

fn distinct(k: &[KernelInstance]) -> usize {
    let mut names: Vec<&str> = k.iter().map(|k| k.source.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

fn render(g: &Graph, notes: Option<&[NodeAnnotation]>, format: &str) -> anyhow::Result<String> {
    Ok(match format {
        "text" => to_text(g, notes),
        "dot" => to_dot(g, notes),
        _ => serde_json::to_string_pretty(&to_json(g, notes))?,
    })
}

fn render_with_graphviz(dot: &str, out: &std::path::Path) -> anyhow::Result<()> {
    let kind = match out.extension().and_then(|e| e.to_str()) {
        Some("svg") => "svg",
        Some("png") => "png",
        _ => bail!("--render {}: expected a .svg or .png file", out.display()),
    };
    let mut child = match std::process::Command::new("dot")
        .arg(format!("-T{kind}"))
        .arg("-o")
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "--render needs Graphviz's `dot`, which is not installed (apt-get install graphviz); --format dot -o FILE writes the DOT text instead"
            )
        }
        Err(e) => return Err(e).context("starting dot"),
    };
    use std::io::Write;
    child.stdin.take().context("dot's stdin")?.write_all(dot.as_bytes())?;
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "dot failed ({status})");
    eprintln!("rendered {}", out.display());
    Ok(())
}
